import CityKit
import Foundation
import Synchronization

/// What makes a subscription fire (`notificationTrigger`).
public enum NotificationTrigger: String, Sendable, CaseIterable {
    case entityCreated, entityUpdated, entityDeleted, attributeCreated, attributeUpdated, attributeDeleted

    /// The standard's default: changes of attributes.
    public static let defaults: Set<NotificationTrigger> = [.attributeCreated, .attributeUpdated]
}

/// One member of a subscription's `entities`: an id or an id pattern, and a type expression (names expanded).
public struct EntitySelector: Sendable {
    public var id: String?
    public var idPattern: String?
    public var type: TypeExpression

    public func matches(id entityID: String, types: [String]) -> Bool {
        compiled().matches(id: entityID, types: types)
    }

    /// The selector with its pattern compiled, to test many entities.
    func compiled() -> Compiled {
        Compiled(id: id, pattern: idPattern.map { RegexCache.entry($0) }, type: type)
    }

    /// A selector ready to test many entities: its pattern looked up once (`.some(nil)`: a pattern that does
    /// not compile, which selects nothing).
    struct Compiled: Sendable {
        let id: String?
        let pattern: RegexCache.Entry??
        let type: TypeExpression

        func matches(id entityID: String, types: [String]) -> Bool {
            if let id, id != entityID { return false }
            if let pattern {
                guard let pattern, pattern.matches(entityID) else { return false }
            }
            return type.matches(types)
        }
    }
}

/// Where and how notifications go (`notification.endpoint`).
public struct NotificationEndpoint: Sendable, Equatable {
    public enum Scheme: String, Sendable { case http, https, mqtt, mqtts }

    public var uri: String
    public var scheme: Scheme
    /// `application/json` (context in a Link header), `application/ld+json` (in the body) or `application/geo+json`.
    public var accept: String
    /// Extra headers (HTTP) sent with every notification.
    public var receiverInfo: [(key: String, value: String)]

    public static func == (a: NotificationEndpoint, b: NotificationEndpoint) -> Bool {
        a.uri == b.uri && a.accept == b.accept && a.receiverInfo.map(\.key) == b.receiverInfo.map(\.key)
            && a.receiverInfo.map(\.value) == b.receiverInfo.map(\.value)
    }
}

/// A subscription, checked and with its names expanded, as matching and delivery use it.
///
/// The subscription as the subscriber wrote it is kept beside it (`given`), with the @context it was written
/// in; that is what retrieval shows.
public struct Subscription: Sendable {
    public var id: String
    public var entities: [EntitySelector]
    /// Expanded names; nil watches every attribute.
    public var watchedAttributes: Set<String>?
    public var triggers: Set<NotificationTrigger>
    /// Seconds between periodic notifications; such a subscription does not fire on changes.
    public var timeInterval: Double?
    public var q: QExpression?
    public var geo: GeoFilter?
    public var isActive: Bool
    public var expiresAt: Date?
    /// Least seconds between two notifications.
    public var throttling: Double?
    /// Expanded attribute names a notification shows; nil shows all.
    public var attributes: Set<String>?
    public var format: RepresentationFormat
    public var showChanges: Bool
    public var sysAttrs: Bool
    public var lang: String?
    public var endpoint: NotificationEndpoint
    /// The subscription as written, without `@context` and without the members the broker keeps.
    public var given: [String: JSON]

    /// `active`, `paused` or `expired` at `now`.
    public func status(at now: Date) -> String {
        Self.status(isActive: isActive, expiresAt: expiresAt, at: now)
    }

    static func status(isActive: Bool, expiresAt: Date?, at now: Date) -> String {
        if let expiresAt, expiresAt <= now { return "expired" }
        return isActive ? "active" : "paused"
    }

    /// Whether changes can make this subscription fire at `now` (periodic ones fire on their timer).
    public func firesOnChange(at now: Date) -> Bool {
        timeInterval == nil && status(at: now) == "active"
    }
}

/// Compiled regular expressions for `idPattern`, shared by every subscription that uses one.
///
/// Every change is tested against every subscription's pattern, and most patterns are `^` and a literal
/// id prefix: those are answered by comparing bytes, and the regular expression runs only for an id that
/// has the prefix and a pattern that goes on past it.
enum RegexCache {
    private static let cache = SendableCache()

    static func matches(_ pattern: String, _ text: String) -> Bool {
        cache.entry(pattern)?.matches(text) ?? false
    }

    /// The compiled pattern, nil when it does not compile.
    static func entry(_ pattern: String) -> Entry? { cache.entry(pattern) }

    /// The literal text an anchored pattern's matches must start with (after `^`, escaped punctuation
    /// included, up to the first other syntax), and whether it is the whole pattern; nil when the pattern is
    /// not anchored or has alternatives.
    static func literalPrefix(_ pattern: String) -> (literal: String, isWhole: Bool)? {
        guard pattern.hasPrefix("^"), !pattern.contains("|") else { return nil }
        let syntax: Set<Character> = [".", "^", "$", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "\\"]
        var literal = ""
        var rest = pattern.dropFirst()
        while let c = rest.first {
            if c == "\\" {
                // `\.` is a dot; `\d`, `\w`, `\1`… are classes or references.
                guard let next = rest.dropFirst().first, !next.isLetter, !next.isNumber else { break }
                literal.append(next)
                rest = rest.dropFirst(2)
                continue
            }
            if syntax.contains(c) { break }
            literal.append(c)
            rest = rest.dropFirst()
        }
        // A quantifier that may repeat the last character zero times leaves it out of what is certain.
        if let next = rest.first, "*?{".contains(next), !literal.isEmpty {
            literal.removeLast()
            return (literal, false)
        }
        return (literal, rest.isEmpty)
    }

    struct Entry: Sendable {
        let regex: NSRegularExpression
        /// The UTF-8 bytes every match starts with (empty: none known), and whether they are the whole pattern.
        let prefix: [UInt8]
        let prefixIsWhole: Bool

        init(regex: NSRegularExpression, prefix: (literal: String, isWhole: Bool)?) {
            self.regex = regex
            self.prefix = Array((prefix?.literal ?? "").utf8)
            self.prefixIsWhole = prefix?.isWhole ?? false
        }

        func matches(_ text: String) -> Bool {
            if !prefix.isEmpty {
                guard Self.starts(text, with: prefix) else { return false }
                if prefixIsWhole { return true }
            }
            return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }

        /// Whether `text`'s UTF-8 starts with `prefix` (not empty): one memory comparison for a native string.
        static func starts(_ text: String, with prefix: [UInt8]) -> Bool {
            let compared = text.utf8.withContiguousStorageIfAvailable { bytes in
                bytes.count >= prefix.count && memcmp(bytes.baseAddress!, prefix, prefix.count) == 0
            }
            return compared ?? text.utf8.starts(with: prefix)
        }
    }

    private final class SendableCache: Sendable {
        private let compiled = Mutex<[String: Entry]>([:])

        func entry(_ pattern: String) -> Entry? {
            if let found = compiled.withLock({ $0[pattern] }) { return found }
            guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
            let entry = Entry(regex: regex, prefix: RegexCache.literalPrefix(pattern))
            compiled.withLock { cache in
                if cache.count > 10_000 { cache.removeAll() }
                cache[pattern] = entry
            }
            return entry
        }
    }
}
