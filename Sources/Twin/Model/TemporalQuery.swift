import CityKit
import Foundation

/// `timerel` with its times: before `timeAt`, after it, or between `timeAt` (included) and `endTimeAt`.
public enum TimeRelation: Sendable, Equatable {
    case before(Date)
    case after(Date)
    case between(Date, Date)
}

/// Which time of an instance `timerel` and `lastN` apply to.
public enum TimeProperty: String, Sendable {
    case observedAt, createdAt, modifiedAt
}

/// The temporal part of a history query, names expanded.
public struct TemporalQuery: Sendable, Equatable {
    public var timerel: TimeRelation?
    public var timeProperty: TimeProperty = .observedAt
    /// The last N instances of each attribute (returned oldest first).
    public var lastN: Int?
    /// Attributes to return (expanded); nil for all.
    public var attrs: Set<String>?
    /// The most instances returned per attribute; a longer history answers 206 with `Content-Range`.
    public var instanceLimit = 1000
    /// Whether instances carry `createdAt` and `modifiedAt` (for `sysAttrs`, or a `timeproperty` other than
    /// `observedAt`); without them an instance costs two members less to read and write.
    public var systemTimes = true

    public init() {}
}

/// An `aggrMethods` method.
public enum AggregationMethod: String, Sendable, CaseIterable {
    case totalCount, distinctCount, sum, avg, min, max, stddev, sumsq
}

/// `options=aggregatedValues`: methods, and the period (microseconds) each value covers; nil for one
/// period spanning the whole range.
public struct AggregationQuery: Sendable, Equatable {
    public var methods: [AggregationMethod]
    public var period: Int64?

    public init(methods: [AggregationMethod], period: Int64?) {
        self.methods = methods
        self.period = period
    }

    /// An ISO 8601 duration in weeks, days, hours, minutes and seconds (`P1W`, `P1D`, `PT1H`, `PT15M`,
    /// `PT0.5S`, `P1DT12H`) as microseconds. Years and months have no fixed length and are refused.
    public static func period(_ text: String) throws(NGSIError) -> Int64 {
        var rest = Substring(text)
        guard rest.first == "P", rest.count > 1 else { throw .badData("aggrPeriodDuration \(text) is not an ISO 8601 duration such as PT1H") }
        rest = rest.dropFirst()
        var inTime = false
        var timeUnits = 0
        var total = 0.0
        var number = ""
        for c in rest {
            if c == "T" {
                guard !inTime, number.isEmpty else { throw .badData("aggrPeriodDuration \(text) is not an ISO 8601 duration") }
                inTime = true
            } else if c.isNumber || c == "." || c == "," {
                number.append(c == "," ? "." : c)
            } else {
                guard let n = Double(number), n >= 0, n.isFinite else { throw .badData("aggrPeriodDuration \(text) is not an ISO 8601 duration") }
                let seconds: Double
                switch (c, inTime) {
                case ("W", false): seconds = 604_800
                case ("D", false): seconds = 86_400
                case ("H", true): seconds = 3_600
                case ("M", true): seconds = 60
                case ("S", true): seconds = 1
                case ("Y", false), ("M", false):
                    throw .badData("aggrPeriodDuration \(text): years and months have no fixed length; give weeks, days or hours")
                default: throw .badData("aggrPeriodDuration \(text) is not an ISO 8601 duration")
                }
                total += n * seconds
                number = ""
                if inTime { timeUnits += 1 }
            }
        }
        guard number.isEmpty, !inTime || timeUnits > 0, total >= 1e-6, total < 1e11 else { throw .badData("aggrPeriodDuration \(text) is not a usable duration") }
        return Int64((total * 1_000_000).rounded())
    }
}
