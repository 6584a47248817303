import Glibc
import Testing
@testable import Net
import CTandemShim

/// What the thread count is planned on: the affinity mask, capped by a cgroup CPU limit.
@Suite struct ProcessorsTests {
    @Test func affinityAndQuotaCapTheOnlineCount() {
        #expect(ProcessorBudget.processors(online: 64, affinity: nil, quota: nil) == 64)
        #expect(ProcessorBudget.processors(online: 64, affinity: 4, quota: nil) == 4)
        #expect(ProcessorBudget.processors(online: 64, affinity: 4, quota: 2) == 2)
        #expect(ProcessorBudget.processors(online: 64, affinity: 4, quota: 8) == 4)
        #expect(ProcessorBudget.processors(online: 0, affinity: nil, quota: nil) == 1)
    }

    @Test(arguments: [
        // cgroup v2, the container's own namespace: the quota sits at the mount's root.
        ("0::/\n", ["/sys/fs/cgroup/cpu.max": "150000 100000\n"], 2 as Int?),
        ("0::/\n", ["/sys/fs/cgroup/cpu.max": "max 100000\n"], nil),
        ("0::/\n", ["/sys/fs/cgroup/cpu.max": "50000 100000\n"], 1),
        // v2 without a cgroup namespace: the process's own cgroup first.
        ("0::/kubepods/pod1/c1\n", ["/sys/fs/cgroup/kubepods/pod1/c1/cpu.max": "400000 100000\n",
                                    "/sys/fs/cgroup/cpu.max": "max 100000\n"], 4),
        // cgroup v1, as this machine has it.
        ("4:memory:/x\n1:cpu,cpuacct:/kubepods/c2\n0::/\n", ["/sys/fs/cgroup/cpu/kubepods/c2/cpu.cfs_quota_us": "250000\n",
                                                             "/sys/fs/cgroup/cpu/kubepods/c2/cpu.cfs_period_us": "100000\n"], 3),
        ("1:cpu:/\n0::/\n", ["/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"], nil),
        // Nothing readable, or nonsense: no limit known.
        ("", [:], nil),
        ("0::/\n", ["/sys/fs/cgroup/cpu.max": "lots\n"], nil),
    ] as [(String, [String: String], Int?)])
    func readsTheCgroupQuota(selfCgroup: String, files: [String: String], quota: Int?) {
        #expect(ProcessorBudget.cgroupQuota(selfCgroup: selfCgroup, read: { files[$0] }) == quota)
    }

    /// The real call agrees with the affinity mask `taskset` sees (this machine sets no quota).
    @Test func thisProcessCountsItsAffinity() {
        var online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        online = max(1, online)
        let available = availableProcessors()
        #expect((1...online).contains(available))
        #expect(Int(tandem_affinity_cpu_count()) >= available)
    }
}
