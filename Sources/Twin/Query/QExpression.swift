/// A parsed `q` query: terms joined by AND (`;`) and OR (`|`).
public indirect enum QExpression: Sendable, Equatable {
    case and([QExpression])
    case or([QExpression])
    case term(QTerm)

    /// Every attribute path the expression names.
    public var paths: [QPath] {
        switch self {
        case .and(let items), .or(let items): items.flatMap(\.paths)
        case .term(let term): [term.path]
        }
    }

    /// Rewrites each path's attribute names (expansion with a context).
    public func mapNames(_ transform: (String) -> String) -> QExpression {
        switch self {
        case .and(let items): return .and(items.map { $0.mapNames(transform) })
        case .or(let items): return .or(items.map { $0.mapNames(transform) })
        case .term(var term):
            term.path.attribute = transform(term.path.attribute)
            term.path.subAttributes = term.path.subAttributes.map(transform)
            return .term(term)
        }
    }
}

/// `attribute.subAttribute…[compound.member…]` optionally ending in a metadata name such as `observedAt`.
public struct QPath: Sendable, Equatable {
    public var attribute: String
    public var subAttributes: [String] = []
    /// Members inside a compound value, from `[a.b]`.
    public var compound: [String] = []
    /// `observedAt`, `createdAt`, `modifiedAt`, `unitCode`, `datasetId` when the path addresses metadata.
    public var metadata: String?

    public static let metadataNames: Set<String> = ["observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId"]
}

public struct QTerm: Sendable, Equatable {
    public enum Operator: String, Sendable, Equatable {
        case equal = "==", unequal = "!=", greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="
        case matches = "~=", notMatches = "!~="
    }

    public var path: QPath
    /// nil: the term tests that the attribute exists (or, with `negated`, that it does not).
    public var op: Operator?
    public var value: QValue?
    public var negated = false
}

public indirect enum QValue: Sendable, Equatable {
    case number(Double)
    case string(String)
    /// An unquoted ISO 8601 date-time, date or time.
    case dateTime(String)
    case bool(Bool)
    /// An unquoted URI or other bare text.
    case uri(String)
    case null
    case list([QValue])
    case range(QValue, QValue)
}
