import Synchronization

/// Prometheus metrics kept in memory and written in the text exposition format (0.0.4).
///
/// Metrics are declared once, up front, with their label names; a series per distinct label
/// value list is created on first use. Every update takes one short lock on its metric.
///
/// Updates take their label values as variadic arguments and are inlined into the caller, which
/// hands the metric a pointer to them: the list is then made on the caller's stack, not the heap
/// (an admission's two updates allocated and freed one each, 1,000 of its instructions). A list
/// is stored only when it names a new series.
public final class MetricsRegistry: Sendable {
    private let metrics = Mutex<[any ExposableMetric]>([])

    public init() {}

    public func counter(_ name: String, help: String, labels: [String] = []) -> Counter {
        register(Counter(name: name, help: help, labelNames: labels))
    }

    public func gauge(_ name: String, help: String, labels: [String] = []) -> Gauge {
        register(Gauge(name: name, help: help, labelNames: labels))
    }

    /// A counter or gauge whose values are kept elsewhere and read each time metrics are written:
    /// counters a data plane keeps per thread without locks (summed here, off its hot path), or
    /// the state of something else. Series that `read` stops returning are no longer written.
    public func collected(_ name: String, help: String, type: MetricType, labels: [String] = [],
                          read: @escaping @Sendable () -> [(labels: [String], value: Double)]) {
        _ = register(CollectedMetric(name: name, help: help, type: type, labelNames: labels, read: read))
    }

    /// `buckets` are upper bounds in ascending order; `+Inf` is added.
    public func histogram(_ name: String, help: String, labels: [String] = [],
                          buckets: [Double] = Histogram.defaultBuckets) -> Histogram {
        register(Histogram(name: name, help: help, labelNames: labels, buckets: buckets))
    }

    /// Every metric in declaration order, series sorted by label values.
    public func exposition() -> String {
        var text = ""
        for metric in metrics.withLock({ $0 }) { metric.write(into: &text) }
        return text
    }

    /// The content type of `exposition()`.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// `tandem_build_info`: what this binary is (version, revision, library versions), always 1;
    /// every Tandem server exposes the same gauge with the labels `tandem version` prints.
    public func buildInfo(_ labels: [(name: String, value: String)]) {
        gauge("tandem_build_info", help: "What this binary is (version, revision, libraries); always 1.",
              labels: labels.map(\.name)).set(1, labels: labels.map(\.value))
    }

    private func register<M: ExposableMetric>(_ metric: M) -> M {
        metrics.withLock { list in
            precondition(!list.contains { $0.name == metric.name }, "metric \(metric.name) declared twice")
            list.append(metric)
        }
        return metric
    }
}

/// How a counter or gauge is declared in the exposition.
public enum MetricType: String, Sendable {
    case counter, gauge
}

protocol ExposableMetric: Sendable {
    var name: String { get }
    func write(into text: inout String)
}

/// Values by label values, written in the exposition format: what counters and gauges share.
final class LabeledValues: Sendable {
    let name: String
    private let help: String
    private let type: MetricType
    private let labelNames: [String]
    private let series = Mutex(SeriesTable<Double>())

    init(name: String, help: String, type: MetricType, labelNames: [String]) {
        (self.name, self.help, self.type, self.labelNames) = (name, help, type, labelNames)
        if labelNames.isEmpty { update(UnsafeBufferPointer(start: nil, count: 0)) { _ in } }
    }

    /// `labels` are values in the order of the declared label names.
    func update(_ labels: UnsafeBufferPointer<String>, _ change: (inout Double) -> Void) {
        precondition(labels.count == labelNames.count, "\(name): bad labels")
        series.withLock { $0.update(labels, default: 0, change) }
    }

    func value(_ labels: UnsafeBufferPointer<String>) -> Double { series.withLock { $0[labels] ?? 0 } }

    func write(into text: inout String) {
        writeSeries(&text, name: name, help: help, type: type, labelNames: labelNames, series: series.withLock { $0.all })
    }
}

/// Series by their label values. The series updated last is compared first: a server's
/// requests mostly count into the series of the one before, and comparing two label lists made
/// of the same literals is cheaper than hashing one (per admission, the webhook's counter went
/// from 730 to 170 instructions and its histogram from 640 to 220).
struct SeriesTable<Value: Sendable>: Sendable {
    /// Every series' label values, one after another: compared in place, without retaining a
    /// list per series.
    private var labels: [String] = []
    private var values: [Value] = []
    private var positions: [[String]: Int] = [:]
    private var last = 0

    mutating func update(_ labels: UnsafeBufferPointer<String>, default: @autoclosure () -> Value, _ change: (inout Value) -> Void) {
        if last >= values.count || !labelsMatch(last, labels) {
            let list = Array(labels)
            if let position = positions[list] {
                last = position
            } else {
                last = values.count
                positions[list] = last
                self.labels.append(contentsOf: list)
                values.append(`default`())
            }
        }
        change(&values[last])
    }

    private func labelsMatch(_ position: Int, _ labels: UnsafeBufferPointer<String>) -> Bool {
        let start = position * labels.count
        for index in labels.indices where self.labels[start + index] != labels[index] { return false }
        return true
    }

    subscript(labels: UnsafeBufferPointer<String>) -> Value? { positions[Array(labels)].map { values[$0] } }

    var all: [(labels: [String], value: Value)] {
        let width = values.isEmpty ? 0 : labels.count / values.count
        return values.indices.map { (labels: Array(labels[$0 * width..<($0 + 1) * width]), value: values[$0]) }
    }
}

/// Values read from their owner at each exposition.
final class CollectedMetric: ExposableMetric {
    let name: String
    private let help: String
    private let type: MetricType
    private let labelNames: [String]
    private let read: @Sendable () -> [(labels: [String], value: Double)]

    init(name: String, help: String, type: MetricType, labelNames: [String],
         read: @escaping @Sendable () -> [(labels: [String], value: Double)]) {
        (self.name, self.help, self.type, self.labelNames, self.read) = (name, help, type, labelNames, read)
    }

    func write(into text: inout String) {
        let series = read()
        precondition(series.allSatisfy { $0.labels.count == labelNames.count }, "\(name): bad labels")
        writeSeries(&text, name: name, help: help, type: type, labelNames: labelNames, series: series)
    }
}

/// A value that only goes up, per label values.
public final class Counter: ExposableMetric {
    private let values: LabeledValues
    var name: String { values.name }

    init(name: String, help: String, labelNames: [String]) {
        values = LabeledValues(name: name, help: help, type: .counter, labelNames: labelNames)
    }

    /// `labels` are values in the order of the declared label names.
    @inlinable @inline(__always) public func increment(by amount: Double = 1, _ labels: String...) {
        labels.withUnsafeBufferPointer { increment(by: amount, labels: $0) }
    }

    @usableFromInline func increment(by amount: Double, labels: UnsafeBufferPointer<String>) {
        precondition(amount >= 0, "\(name): negative increment")
        values.update(labels) { $0 += amount }
    }

    public func value(_ labels: String...) -> Double { labels.withUnsafeBufferPointer { values.value($0) } }

    func write(into text: inout String) { values.write(into: &text) }
}

/// A value that goes up and down, per label values.
public final class Gauge: ExposableMetric {
    private let values: LabeledValues
    var name: String { values.name }

    init(name: String, help: String, labelNames: [String]) {
        values = LabeledValues(name: name, help: help, type: .gauge, labelNames: labelNames)
    }

    @inlinable @inline(__always) public func set(_ value: Double, _ labels: String...) {
        set(value, labels: labels)
    }

    /// For label values only known at run time as a list.
    @inlinable @inline(__always) public func set(_ value: Double, labels: [String]) {
        labels.withUnsafeBufferPointer { set(value, labels: $0) }
    }

    @usableFromInline func set(_ value: Double, labels: UnsafeBufferPointer<String>) {
        values.update(labels) { $0 = value }
    }

    @inlinable @inline(__always) public func add(_ amount: Double, _ labels: String...) {
        labels.withUnsafeBufferPointer { add(amount, labels: $0) }
    }

    @usableFromInline func add(_ amount: Double, labels: UnsafeBufferPointer<String>) {
        values.update(labels) { $0 += amount }
    }

    public func value(_ labels: String...) -> Double { labels.withUnsafeBufferPointer { values.value($0) } }

    func write(into text: inout String) { values.write(into: &text) }
}

/// Observations counted into cumulative buckets, with their sum and count.
public final class Histogram: ExposableMetric {
    /// Seconds, from 0.5 ms to 10 s: admission latency budgets live between these.
    public static let defaultBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    struct Series {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0

        mutating func record(_ value: Double, in bucket: Int) {
            counts[bucket] += 1
            sum += value
            count += 1
        }
    }

    let name: String
    private let help: String
    private let labelNames: [String]
    private let buckets: [Double]
    private let series = Mutex(SeriesTable<Series>())

    init(name: String, help: String, labelNames: [String], buckets: [Double]) {
        precondition(zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 }, "\(name): buckets must ascend")
        (self.name, self.help, self.labelNames, self.buckets) = (name, help, labelNames, buckets)
    }

    @inlinable @inline(__always) public func observe(_ value: Double, _ labels: String...) {
        labels.withUnsafeBufferPointer { observe(value, labels: $0) }
    }

    @usableFromInline func observe(_ value: Double, labels: UnsafeBufferPointer<String>) {
        precondition(labels.count == labelNames.count, "\(name): bad labels")
        let index = buckets.firstIndex { value <= $0 } ?? buckets.count
        // In place: a copy taken out and stored back copies the counts, for every admission.
        series.withLock { all in
            all.update(labels, default: Series(counts: Array(repeating: 0, count: buckets.count + 1))) { $0.record(value, in: index) }
        }
    }

    /// How many observations were made with these labels.
    public func count(_ labels: String...) -> UInt64 { labels.withUnsafeBufferPointer { labels in series.withLock { $0[labels]?.count ?? 0 } } }

    func write(into text: inout String) {
        writeHeader(&text, name: name, help: help, type: "histogram")
        for (labels, entry) in series.withLock({ $0.all }).sorted(by: { $0.labels.lexicographicallyPrecedes($1.labels) }) {
            var cumulative: UInt64 = 0
            for (index, count) in entry.counts.enumerated() {
                cumulative += count
                let bound = index < buckets.count ? formatNumber(buckets[index]) : "+Inf"
                text += "\(name)_bucket\(labelText(labelNames + ["le"], labels + [bound])) \(cumulative)\n"
            }
            text += "\(name)_sum\(labelText(labelNames, labels)) \(formatNumber(entry.sum))\n"
            text += "\(name)_count\(labelText(labelNames, labels)) \(entry.count)\n"
        }
    }
}

private func writeHeader(_ text: inout String, name: String, help: String, type: String) {
    text += "# HELP \(name) \(escape(help, quotes: false))\n# TYPE \(name) \(type)\n"
}

/// A counter's or gauge's header and its series, sorted by label values.
private func writeSeries(_ text: inout String, name: String, help: String, type: MetricType, labelNames: [String],
                         series: [(labels: [String], value: Double)]) {
    writeHeader(&text, name: name, help: help, type: type.rawValue)
    for (labels, value) in series.sorted(by: { $0.labels.lexicographicallyPrecedes($1.labels) }) {
        text += "\(name)\(labelText(labelNames, labels)) \(formatNumber(value))\n"
    }
}

private func labelText(_ names: [String], _ values: [String]) -> String {
    guard !names.isEmpty else { return "" }
    return "{" + zip(names, values).map { "\($0)=\"\(escape($1, quotes: true))\"" }.joined(separator: ",") + "}"
}

/// Backslash and newline always; double quotes inside label values.
private func escape(_ text: String, quotes: Bool) -> String {
    guard text.contains(where: { $0 == "\\" || $0 == "\n" || (quotes && $0 == "\"") }) else { return text }
    var out = ""
    for character in text {
        switch character {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\"" where quotes: out += "\\\""
        default: out.append(character)
        }
    }
    return out
}

/// Integers without a fraction; everything else as Swift's shortest round-trip text.
func formatNumber(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}
