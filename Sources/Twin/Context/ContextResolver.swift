import AsyncHTTPClient
import CityKit
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// Uses of one context URL.
public struct ContextUsage: Sendable, Equatable {
    public var hits: Int
    public var lastUsage: Date
}

/// Turns the @context a request names (a URL, an inline object, or a list of both) into an `LDContext`.
///
/// Remote contexts are fetched once over HTTP, kept in the database (so they survive a restart) and in
/// memory; one that cannot be fetched is answered with 503 `LdContextNotAvailable`.
public final class ContextResolver: Sendable {
    private let store: any ContextStore
    private let fetcher: any ContextFetcher
    private let logger: Logger
    private let resolved = Mutex<[String: LDContext]>([:])
    private let documents = Mutex<[String: JSON]>([:])
    private let usage = Mutex<[String: ContextUsage]>([:])
    /// Base URL under which hosted contexts are served, e.g. `http://host:port/ngsi-ld/v1/jsonldContexts/`.
    public let hostedBase: String

    static let maximumDepth = 8
    static let maximumCacheEntries = 1000

    public init(store: any ContextStore, fetcher: any ContextFetcher, hostedBase: String, logger: Logger) {
        self.store = store
        self.fetcher = fetcher
        self.hostedBase = hostedBase
        self.logger = logger
    }

    public var core: LDContext { CoreContext.context }

    /// Resolves a context value; `nil` gives the core context. A context given inline (not a single URL) is
    /// also kept as an `ImplicitlyCreated` context unless `implicit` is false, so that answers can link to it.
    public func resolve(_ value: JSON?, implicit: Bool = true) async throws(NGSIError) -> LDContext {
        guard let value else { return core }
        if case .string(let url) = value, CoreContext.isCoreURL(url) { return core }
        recordUse(of: value)
        let key = JSONCoding.string(value)
        if let cached = resolved.withLock({ $0[key] }), cached.implicitURL != nil || !implicit || value.stringValue != nil {
            if let url = cached.implicitURL { recordUse(of: .string(url)) }
            return cached
        }
        var definitions: [[String: JSON]] = []
        var seen = Set<String>()
        try await collect(value, into: &definitions, depth: 0, seen: &seen)
        definitions.append(CoreContext.definitions)
        var context = LDContext(definitions: definitions, source: value)
        if implicit, value.stringValue == nil {
            context.implicitURL = await keepImplicit(value, key: key)
            if let url = context.implicitURL { recordUse(of: .string(url)) }
        }
        resolved.withLock { cache in
            if cache.count >= Self.maximumCacheEntries { cache.removeAll() }
            cache[key] = context
        }
        return context
    }

    /// Counts a use of each context URL a request names (`numberOfHits`, `lastUsage`), in memory since start.
    private func recordUse(of value: JSON) {
        let urls: [String]
        switch value {
        case .string(let url): urls = [url]
        case .array(let items): urls = items.compactMap(\.stringValue)
        default: urls = []
        }
        guard !urls.isEmpty else { return }
        let now = Date()
        usage.withLock { usage in
            for url in urls where !CoreContext.isCoreURL(url) {
                usage[url, default: ContextUsage(hits: 0, lastUsage: now)].hits += 1
                usage[url]!.lastUsage = now
            }
        }
    }

    /// How often and when a context URL was last used by a request, since this process started.
    public func usage(of url: String) -> ContextUsage? {
        usage.withLock { $0[url] }
    }

    /// Stores an inline context once (its id is a hash of its text) and returns the URL it is served at; nil
    /// if it could not be stored (answers then link the core context).
    private func keepImplicit(_ value: JSON, key: String) async -> String? {
        let id = StoredContext.id(for: key)
        let url = hostedBase + id
        do {
            if try await store.find(id: id) == nil {
                try await store.save(StoredContext(id: id, url: url, document: ["@context": value], kind: .implicitlyCreated, createdAt: Date()))
            }
            return url
        } catch {
            logger.warning("could not keep an inline @context", metadata: ["error": "\(String(reflecting: error))"])
            return nil
        }
    }

    /// Forgets what was resolved from `url`, so the next use fetches or reads it again.
    public func invalidate(url: String) {
        _ = documents.withLock { $0.removeValue(forKey: url) }
        resolved.withLock { $0.removeAll() }
    }

    private func collect(_ value: JSON, into definitions: inout [[String: JSON]], depth: Int, seen: inout Set<String>) async throws(NGSIError) {
        guard depth < Self.maximumDepth else { throw .badData("@context nests or imports too deeply") }
        switch value {
        case .null:
            return
        case .string(let url):
            if CoreContext.isCoreURL(url) { return }
            guard !seen.contains(url) else { return }
            seen.insert(url)
            let document = try await fetchDocument(url)
            guard let inner = document["@context"] else {
                throw NGSIError(.ldContextNotAvailable, "the document at \(url) has no @context")
            }
            try await collect(inner, into: &definitions, depth: depth + 1, seen: &seen)
        case .array(let items):
            for item in items { try await collect(item, into: &definitions, depth: depth + 1, seen: &seen) }
        case .object(let object):
            if let nested = object["@context"], object.count == 1 {
                try await collect(nested, into: &definitions, depth: depth + 1, seen: &seen)
            } else {
                definitions.append(object)
            }
        default:
            throw .badData("@context must be a URL, an object or an array, not a \(value.typeName)")
        }
    }

    /// A context document by URL: hosted here, cached, or fetched now and cached.
    public func fetchDocument(_ url: String) async throws(NGSIError) -> JSON {
        if let document = documents.withLock({ $0[url] }) { return document }
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme.lowercased()) else {
            throw .badData("the @context URL \(url) is not an http(s) URL")
        }
        if let stored = try await loadStored(url) {
            documents.withLock { $0[url] = stored }
            return stored
        }
        let document: JSON
        do {
            document = try await fetcher.fetch(url)
        } catch {
            logger.warning("could not fetch @context", metadata: ["url": "\(url)", "error": "\(error)"])
            throw NGSIError(.ldContextNotAvailable, "the @context at \(url) could not be fetched: \(error)")
        }
        guard document["@context"] != nil else {
            throw NGSIError(.ldContextNotAvailable, "the document at \(url) has no @context")
        }
        do {
            try await store.save(StoredContext(id: StoredContext.id(for: url), url: url, document: document, kind: .cached, createdAt: Date()))
        } catch {
            logger.error("could not store a fetched @context", metadata: ["url": "\(url)", "error": "\(error)"])
        }
        documents.withLock { $0[url] = document }
        return document
    }

    private func loadStored(_ url: String) async throws(NGSIError) -> JSON? {
        do {
            return try await store.find(url: url)?.document
        } catch {
            throw NGSIError(.internalError, "could not read the @context cache: \(error)")
        }
    }
}

/// Fetches a remote JSON-LD context document.
public protocol ContextFetcher: Sendable {
    func fetch(_ url: String) async throws -> JSON
}

/// Fetches contexts over HTTP(S) with a timeout and a size limit.
public struct HTTPContextFetcher: ContextFetcher {
    let client: HTTPClient
    let timeout: TimeAmount
    let maximumBytes: Int

    public init(client: HTTPClient = .shared, timeout: TimeAmount = .seconds(10), maximumBytes: Int = 1 << 20) {
        self.client = client
        self.timeout = timeout
        self.maximumBytes = maximumBytes
    }

    public struct FetchError: Error, CustomStringConvertible {
        public let description: String
    }

    public func fetch(_ url: String) async throws -> JSON {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/ld+json, application/json")
        let response = try await client.execute(request, timeout: timeout)
        guard (200..<300).contains(response.status.code) else {
            throw FetchError(description: "HTTP \(response.status.code)")
        }
        let body = try await response.body.collect(upTo: maximumBytes)
        return try JSONCoding.parse(Data(buffer: body))
    }
}
