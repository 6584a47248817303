import CTandemShim
import Glibc

/// How many threads a process should plan on: the CPUs its affinity mask allows (taskset,
/// cpusets), capped by its cgroup's CPU quota rounded up (a container's CPU limit), at least 1.
/// The online count overstates both inside a pod: a bridge limited to one CPU on a 64-core node
/// would otherwise start 64 event loops that the quota then throttles.
public func availableProcessors() -> Int {
    let affinity = Int(tandem_affinity_cpu_count())
    return ProcessorBudget.processors(online: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                                      affinity: affinity > 0 ? affinity : nil,
                                      quota: ProcessorBudget.cgroupQuota(selfCgroup: readSmallFile("/proc/self/cgroup"),
                                                                         read: readSmallFile))
}

/// The arithmetic behind `availableProcessors`, apart from the files it reads.
enum ProcessorBudget {
    static func processors(online: Int, affinity: Int?, quota: Int?) -> Int {
        var count = affinity ?? online
        if let quota { count = min(count, quota) }
        return max(1, count)
    }

    /// The CPU quota of the cgroup named in `/proc/self/cgroup`, in whole CPUs rounded up; nil
    /// when unlimited or unknown. cgroup v2 keeps it in `cpu.max` ("QUOTA PERIOD" or "max
    /// PERIOD"); v1 in `cpu.cfs_quota_us` (-1: none) and `cpu.cfs_period_us`. A container with
    /// its own cgroup namespace sees its cgroup at the mount's root, so the root is the fallback.
    static func cgroupQuota(selfCgroup: String?, read: (String) -> String?) -> Int? {
        var v2Path = "/", v1Path = "/"
        for line in (selfCgroup ?? "").split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty { v2Path = String(fields[2]) }
            if fields[1].split(separator: ",").contains("cpu") { v1Path = String(fields[2]) }
        }
        for directory in ownThenRoot("/sys/fs/cgroup", v2Path) {
            if let text = read(directory + "/cpu.max") {
                let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
                guard fields.count == 2, let quota = Int(fields[0]), let period = Int(fields[1]) else { return nil }
                return wholeCPUs(quota: quota, period: period)
            }
        }
        for directory in ownThenRoot("/sys/fs/cgroup/cpu", v1Path) {
            if let quota = read(directory + "/cpu.cfs_quota_us").flatMap({ Int($0.trimmingNewline) }),
               let period = read(directory + "/cpu.cfs_period_us").flatMap({ Int($0.trimmingNewline) }) {
                return wholeCPUs(quota: quota, period: period)
            }
        }
        return nil
    }

    private static func ownThenRoot(_ mount: String, _ path: String) -> [String] {
        path == "/" ? [mount] : [mount + path, mount]
    }

    private static func wholeCPUs(quota: Int, period: Int) -> Int? {
        guard quota > 0, period > 0 else { return nil }
        return (quota + period - 1) / period
    }
}

private extension String {
    var trimmingNewline: Substring { self.split(separator: "\n").first ?? "" }
}

/// A small file's text (procfs and cgroupfs report a size of 0, so read until EOF), or nil.
private func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while bytes.count < 1 << 16 {
        let count = read(fd, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
