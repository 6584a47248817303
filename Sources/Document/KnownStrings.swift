/// Long texts that Kubernetes documents repeat in every pod, as strings made once.
///
/// A Swift string of more than 15 UTF-8 bytes lives on the heap, so each read of
/// `terminationMessagePath` allocated, copied and later freed its own copy. A reader that finds
/// the text here takes this string instead: a literal, which costs nothing to keep or to free.
/// The keys are the pod schema's field names (and a few well-known label keys) of more than 15
/// bytes found in the captured reviews, watches and manifests; the values are the ones the
/// apiserver itself fills into every pod.
public enum KnownStrings {
    static let texts: [String] = [
        // Pod, container and probe fields.
        "terminationMessagePath", "terminationMessagePolicy", "terminationGracePeriodSeconds",
        "serviceAccountName", "serviceAccountToken", "automountServiceAccountToken", "enableServiceLinks",
        "preemptionPolicy", "priorityClassName", "tolerationSeconds", "expirationSeconds", "resourceFieldRef",
        "failureThreshold", "successThreshold", "initialDelaySeconds", "allowPrivilegeEscalation",
        "readOnlyRootFilesystem", "topologySpreadConstraints", "whenUnsatisfiable", "matchExpressions",
        "preferredDuringSchedulingIgnoredDuringExecution",
        // Object metadata and workload fields.
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "blockOwnerDeletion",
        "revisionHistoryLimit", "progressDeadlineSeconds",
        // Label keys.
        "app.kubernetes.io/name", "app.kubernetes.io/version", "app.kubernetes.io/component", "pod-template-hash",
        // Values the apiserver sets in every pod.
        "/dev/termination-log", "/var/run/secrets/kubernetes.io/serviceaccount", "kube-root-ca.crt",
        "metadata.namespace", "default-scheduler", "PreemptLowerPriority", "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable", "admission.k8s.io/v1",
    ]

    /// The known string with exactly these UTF-8 bytes, or nil. Texts of 15 bytes or fewer are
    /// never here: Swift keeps those inline, without allocating.
    @inline(__always)
    public static func string(utf8 text: UnsafeBufferPointer<UInt8>) -> String? {
        table.string(utf8: text)
    }

    /// The length of the longest of `texts`, in UTF-8 bytes (checked as the table is made).
    static let longestLength = 47

    /// Made once and never freed. A reader keeps a copy while it reads, as each use of a static
    /// checks that it is made (a call of `swift_once`, 44 of them in reading a pod).
    static let table = Table(texts)

    /// Open addressing by a hash of the length and the first and last eight bytes, which tell
    /// the known texts apart, so a lookup is a probe or two and one comparison. In plain memory,
    /// so that looking a text up retains and checks nothing, and the strings as their bits: each
    /// a literal's (checked as the table is made), handed out without a retain.
    struct Table: @unchecked Sendable {
        static let slotCount = 256
        /// By slot: 0 for an empty slot, else 1 + the text's position in `texts`.
        let slots: UnsafeMutablePointer<UInt8>
        /// Each text's UTF-8 bytes, and the bits of its string, by position.
        let utf8: UnsafeMutablePointer<UnsafeBufferPointer<UInt8>>
        let bits: UnsafeMutablePointer<(UInt64, UInt64)>

        init(_ texts: [String]) {
            precondition(texts.count < 255 && texts.count * 2 <= Self.slotCount)
            slots = .allocate(capacity: Self.slotCount)
            slots.initialize(repeating: 0, count: Self.slotCount)
            utf8 = .allocate(capacity: texts.count)
            bits = .allocate(capacity: texts.count)
            var longest = 0
            for (position, text) in texts.enumerated() {
                precondition(text.utf8.count > 15, "a known string of 15 bytes or fewer gains nothing")
                precondition(TextScan.isLiteral(text), "a known string is handed out without a retain")
                bits[position] = TextScan.bits(of: text)
                let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: text.utf8.count)
                _ = bytes.initialize(from: text.utf8)
                utf8[position] = UnsafeBufferPointer(bytes)
                longest = max(longest, bytes.count)
                var slot = Self.slot(utf8[position])
                while slots[slot] != 0 { slot = (slot + 1) & (Self.slotCount - 1) }
                slots[slot] = UInt8(position + 1)
            }
            precondition(longest == KnownStrings.longestLength, "the longest known text is \(longest) bytes")
        }

        /// As `KnownStrings.string(utf8:)`. Texts longer than any known, such as the values of
        /// a long env list, are told apart by their length alone, by a constant (loaded from
        /// the table, the test cost more than the lookup saved in a pod without such texts).
        @inline(__always)
        func string(utf8 text: UnsafeBufferPointer<UInt8>) -> String? {
            guard UInt(bitPattern: text.count &- 16) <= UInt(KnownStrings.longestLength - 16) else { return nil }
            return lookUp(text)
        }

        @inline(__always)
        static func slot(_ text: UnsafeBufferPointer<UInt8>) -> Int {
            let raw = UnsafeRawPointer(text.baseAddress!)
            let head = raw.loadUnaligned(as: UInt64.self)
            let tail = raw.loadUnaligned(fromByteOffset: text.count - 8, as: UInt64.self)
            let mixed = (head &* 0x9E37_79B9_7F4A_7C15) ^ (tail &* 0xC2B2_AE3D_27D4_EB4F) ^ UInt64(text.count)
            return Int(truncatingIfNeeded: mixed >> 56)
        }

        /// Inlined, as the readers' callers of `string(utf8:)` (`JSONParser.parseString`, the
        /// YAML reader's scalars) are apart from their loops: as a call, it cost 1.6k more of
        /// reading the sample review's 85k instructions, 40k more of the 1,500-env review's.
        @inline(__always)
        func lookUp(_ text: UnsafeBufferPointer<UInt8>) -> String? {
            var slot = Self.slot(text)
            while true {
                let entry = Int(slots[slot])
                if entry == 0 { return nil }
                let known = utf8[entry - 1]
                if known.count == text.count && TextScan.sameBytes(known, text) {
                    return TextScan.string(bits: bits[entry - 1])
                }
                slot = (slot + 1) & (Self.slotCount - 1)
            }
        }
    }
}
