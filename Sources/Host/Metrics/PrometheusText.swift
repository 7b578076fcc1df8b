// The Prometheus text exposition format (version 0.0.4): metric families with HELP and TYPE lines, samples with
// escaped label values, and histograms as cumulative `_bucket` series plus `_sum` and `_count`.
//
// Owns formatting only: it knows nothing of where the numbers come from.

/// Builds one scrape's worth of Prometheus text, family by family.
public struct PrometheusText: Sendable {
    /// The kinds of family this proxy exposes.
    public enum FamilyType: String, Sendable {
        case counter
        case gauge
        case histogram
    }

    /// The exposition so far.
    public private(set) var text = ""

    public init() {}

    /// Starts a family: its HELP and TYPE lines. Call once per family name, before its samples.
    public mutating func family(_ name: String, _ type: FamilyType, help: String) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type.rawValue)\n"
    }

    /// One sample line: `name{labels} value`.
    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        appendLabels(labels)
        text += " \(Self.format(value))\n"
    }

    /// The series of one histogram: a cumulative `_bucket` per bound and `+Inf`, `_sum` and `_count`.
    ///
    /// `cumulativeBuckets[i]` counts the observations ≤ `bounds[i]`; `count` is the `+Inf` bucket.
    public mutating func histogram(
        _ name: String, _ labels: [(String, String)], bounds: [Double], cumulativeBuckets: [UInt64], sum: Double,
        count: UInt64
    ) {
        for (bound, bucket) in zip(bounds, cumulativeBuckets) {
            sample(name + "_bucket", labels + [("le", Self.format(bound))], Double(bucket))
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], Double(count))
        sample(name + "_sum", labels, sum)
        sample(name + "_count", labels, Double(count))
    }

    /// The same series from per-bucket counts, as the recorders keep them: `perBucket[i]` counts the observations
    /// in (`bounds[i-1]`, `bounds[i]`], and its one extra last slot those above the last bound.
    public mutating func histogram(
        _ name: String, _ labels: [(String, String)], bounds: [Double], perBucket: [UInt64], sum: Double
    ) {
        let cumulative = Self.cumulative(perBucket)
        histogram(name, labels, bounds: bounds, cumulativeBuckets: Array(cumulative.dropLast()), sum: sum,
                  count: cumulative.last ?? 0)
    }

    /// Running totals of per-bucket counts: the observations at or below each bucket's upper bound.
    static func cumulative(_ perBucket: [UInt64]) -> [UInt64] {
        var running: UInt64 = 0
        return perBucket.map { count in
            running += count
            return running
        }
    }

    private mutating func appendLabels(_ labels: [(String, String)]) {
        guard !labels.isEmpty else { return }
        text += "{"
        for (index, (name, value)) in labels.enumerated() {
            if index > 0 { text += "," }
            text += "\(name)=\"\(Self.escapeLabelValue(value))\""
        }
        text += "}"
    }

    /// A label value with `\`, `"` and line feeds escaped, as the format requires.
    static func escapeLabelValue(_ value: String) -> String {
        let special: Set<UInt8> = [UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "\n")]
        guard value.utf8.contains(where: special.contains) else { return value }
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// HELP text with `\` and line feeds escaped (quotes stay as they are there).
    static func escapeHelp(_ help: String) -> String {
        var escaped = ""
        for character in help.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelled as Prometheus reads them.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
