import CityKit

/// A processed JSON-LD context: term definitions ready to expand names to IRIs and compact them back.
///
/// NGSI-LD's core context is always applied last and is protected, so its terms win over a user's.
public struct LDContext: Sendable {
    /// term → absolute IRI (or a JSON-LD keyword such as `@id`).
    private(set) var terms: [String: String] = [:]
    /// Terms whose definition says their value is a vocabulary term (`"@type": "@vocab"`).
    private(set) var vocabTerms: Set<String> = []
    private(set) var vocab: String?
    /// IRI → term, for compaction.
    private var reverse: [String: String] = [:]
    /// Terms that may stand before a colon in a compact IRI (`schema:name`), shortest first.
    private var prefixes: [(term: String, iri: String)] = []
    /// Terms whose definition says whether they are prefixes (`"@prefix": true|false`).
    private var declaredPrefix: [String: Bool] = [:]
    /// The context value callers gave (URLs, objects), to echo back in responses.
    public let source: JSON?
    /// For a context given inline: the URL where this broker serves it (an `ImplicitlyCreated` context), for
    /// the `Link` header of `application/json` answers.
    public internal(set) var implicitURL: String?

    public static let defaultVocabulary = "https://uri.etsi.org/ngsi-ld/default-context/"

    init(definitions: [[String: JSON]], source: JSON?) {
        self.source = source
        for definition in definitions {
            apply(definition)
        }
        // Reverse map: later (core) definitions win over earlier (user) ones for the same term, but a user's
        // own alias for an IRI is preferred when compacting that IRI.
        var reverse: [String: String] = [:]
        for (term, iri) in terms where !term.hasPrefix("@") && !iri.hasPrefix("@") {
            if let existing = reverse[iri] {
                // Prefer the shorter, then alphabetically first, term: deterministic output.
                if (term.count, term) < (existing.count, existing) { reverse[iri] = term }
            } else {
                reverse[iri] = term
            }
        }
        self.reverse = reverse
        // JSON-LD 1.1: a prefix is a term without a colon or slash whose IRI ends in a general delimiter
        // (simple definitions), or one defined with "@prefix": true.
        self.prefixes = terms.compactMap { term, iri -> (term: String, iri: String)? in
            guard !term.hasPrefix("@"), !iri.hasPrefix("@"), !term.contains(":"), !term.contains("/") else { return nil }
            let isPrefix = declaredPrefix[term] ?? iri.last.map { ":/?#[]@".contains($0) } ?? false
            return isPrefix ? (term, iri) : nil
        }.sorted { ($0.term.count, $0.term) < ($1.term.count, $1.term) }
    }

    private mutating func apply(_ definition: [String: JSON]) {
        if let v = definition["@vocab"] {
            if case .string(let s) = v { vocab = s } else if case .null = v { vocab = nil }
        }
        // Two passes so that prefixes defined in the same object are known.
        var pending: [(String, String)] = []
        for (term, value) in definition where !term.hasPrefix("@") {
            switch value {
            case .string(let iri):
                pending.append((term, iri))
                declaredPrefix[term] = nil
            case .object(let object):
                if case .string(let iri)? = object["@id"] {
                    pending.append((term, iri))
                } else {
                    pending.append((term, term))
                }
                if object["@type"] == .string("@vocab") { vocabTerms.insert(term) }
                // An expanded definition is a prefix only when it says so.
                if case .bool(let b)? = object["@prefix"] { declaredPrefix[term] = b } else { declaredPrefix[term] = false }
            case .null:
                terms[term] = nil
            default:
                continue
            }
        }
        var raw: [String: String] = [:]
        for (term, iri) in pending { raw[term] = iri }
        for (term, iri) in pending {
            terms[term] = resolve(iri, local: raw)
        }
    }

    /// Expands a compact IRI or term written in a definition.
    private func resolve(_ value: String, local: [String: String]) -> String {
        if value.hasPrefix("@") { return value }
        if let colon = value.firstIndex(of: ":") {
            let prefix = String(value[..<colon])
            let suffix = value[value.index(after: colon)...]
            if suffix.hasPrefix("//") { return value }
            if let base = local[prefix].flatMap({ $0.contains(":") ? $0 : nil }) ?? terms[prefix] {
                return base + suffix
            }
            return value
        }
        if let iri = local[value], iri != value { return resolve(iri, local: local) }
        if let iri = terms[value] { return iri }
        return (vocab ?? LDContext.defaultVocabulary) + value
    }

    /// Expands a name (attribute, type) to its IRI.
    public func expand(_ name: String) -> String {
        if let iri = terms[name] { return iri }
        if let colon = name.firstIndex(of: ":") {
            let prefix = String(name[..<colon])
            let suffix = name[name.index(after: colon)...]
            if suffix.hasPrefix("//") { return name }
            if let base = terms[prefix] { return base + suffix }
            return name
        }
        return (vocab ?? LDContext.defaultVocabulary) + name
    }

    /// Compacts an IRI to the shortest name the context gives it: a term, else relative to the
    /// vocabulary, else a compact IRI `prefix:suffix` (JSON-LD 1.1 IRI compaction), else the IRI itself.
    public func compact(_ iri: String) -> String {
        if let term = reverse[iri] { return term }
        let vocabulary = vocab ?? LDContext.defaultVocabulary
        if iri.hasPrefix(vocabulary) {
            let rest = String(iri.dropFirst(vocabulary.count))
            if !rest.isEmpty && terms[rest] == nil && !rest.contains(":") { return rest }
        }
        var best: String?
        for (term, base) in prefixes where iri.count > base.count && iri.hasPrefix(base) {
            let candidate = term + ":" + iri.dropFirst(base.count)
            // A compact IRI that is itself a term of another meaning, or that reads as a URL, is not used.
            if let other = terms[candidate], other != iri { continue }
            if candidate.dropFirst(term.count + 1).hasPrefix("//") { continue }
            if best.map({ (candidate.count, candidate) < ($0.count, $0) }) ?? true { best = candidate }
        }
        return best ?? iri
    }

    /// Whether a term's values are vocabulary terms to be expanded too (VocabProperty values).
    public func isVocabTerm(_ name: String) -> Bool { vocabTerms.contains(name) }
}
