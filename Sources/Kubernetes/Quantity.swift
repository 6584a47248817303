/// A Kubernetes resource quantity (`100m`, `0.5`, `128Mi`, `1G`, `1e3`), as accepted for
/// container requests and limits: a non-negative decimal number and one optional suffix.
///
/// Checked here because a bad quantity in an injected container makes the apiserver reject the
/// whole pod with 422, whatever the webhook's failure policy.
public struct ResourceQuantity: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    /// The amount in base units, for comparing a request with its limit; approximate for huge
    /// values, which is enough for ordering.
    public let value: Double

    public var description: String { text }

    private static let binarySuffixes: [String: Double] = [
        "Ki": 0x1p10, "Mi": 0x1p20, "Gi": 0x1p30, "Ti": 0x1p40, "Pi": 0x1p50, "Ei": 0x1p60,
    ]
    private static let decimalSuffixes: [String: Double] = [
        "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    ]

    public init?(_ text: String) {
        let utf8 = Array(text.utf8)
        var index = 0
        if index < utf8.count, utf8[index] == UInt8(ascii: "+") { index += 1 }
        let numberStart = index
        var digits = 0
        var sawPoint = false
        while index < utf8.count {
            let byte = utf8[index]
            if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                digits += 1
            } else if byte == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else {
                break
            }
            index += 1
        }
        guard digits > 0, let number = Double(String(decoding: utf8[numberStart..<index], as: UTF8.self)) else {
            return nil
        }
        let suffix = String(decoding: utf8[index...], as: UTF8.self)
        let scale: Double
        if let binary = Self.binarySuffixes[suffix] {
            scale = binary
        } else if let decimal = Self.decimalSuffixes[suffix] {
            scale = decimal
        } else if let exponent = Self.exponent(suffix) {
            scale = exponent
        } else {
            return nil
        }
        self.text = text
        self.value = number * scale
    }

    /// `e3`, `E-2`, `e+6`: a decimal exponent with an integer power.
    private static func exponent(_ suffix: String) -> Double? {
        guard let first = suffix.first, first == "e" || first == "E" else { return nil }
        var rest = suffix.dropFirst()
        var sign = 1.0
        if let s = rest.first, s == "+" || s == "-" {
            sign = s == "-" ? -1 : 1
            rest = rest.dropFirst()
        }
        guard !rest.isEmpty, rest.count <= 3, rest.allSatisfy(\.isASCII), rest.allSatisfy(\.isNumber),
              let power = Double(String(rest))
        else { return nil }
        return pow10(sign * power)
    }

    private static func pow10(_ power: Double) -> Double {
        var result = 1.0
        let steps = Int(power.magnitude)
        for _ in 0..<steps { result *= 10 }
        return power < 0 ? 1 / result : result
    }
}
