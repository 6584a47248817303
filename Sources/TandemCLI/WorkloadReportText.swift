import Injection

/// The report `inject` and `uninject` print on standard error: a line per workload with its
/// reason code (the same codes the webhook logs and counts), warnings under it.
enum WorkloadReportText {
    static func summary(_ lines: [WorkloadLine], operation: String) -> String {
        var text = ""
        for line in lines {
            text += "\(line.source): document \(line.document): \(reference(line.report)): \(line.report.reason.rawValue)"
            if line.report.reason == .injected, let mode = line.report.mode { text += " (\(mode.rawValue))" }
            text += "\n"
            for warning in line.report.warnings {
                text += "  warning: \(warning)\n"
            }
        }
        let changed = lines.filter { $0.report.reason == .injected || $0.report.reason == .uninjected }.count
        let verb = operation == "inject" ? "injected" : "uninjected"
        text += "\(lines.count) object(s): \(changed) \(verb), \(lines.count - changed) unchanged\n"
        return text
    }

    /// `deployment/web`, as kubectl names objects.
    static func reference(_ report: WorkloadReport) -> String {
        report.kind.lowercased() + "/" + (report.name.isEmpty ? "<unnamed>" : report.name)
    }

    /// Every check made on the workloads whose name or kind/name is `target`.
    static func explanation(_ lines: [WorkloadLine], matching target: String) -> String {
        let matching = lines.filter { line in
            line.report.name == target || reference(line.report).lowercased() == target.lowercased()
        }
        guard !matching.isEmpty else { return "no workload named \"\(target)\" in the input\n" }
        var text = ""
        for line in matching {
            text += "\(reference(line.report)) (\(line.source), document \(line.document)): \(line.report.reason.rawValue)\n"
            for step in line.report.explanation {
                text += "  - \(step)\n"
            }
        }
        return text
    }
}
