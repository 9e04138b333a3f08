import CityKit
import Crypto
import Foundation

/// A JSON-LD context the broker keeps: fetched from elsewhere (`cached`) or posted to it (`hosted`).
public struct StoredContext: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable { case hosted = "Hosted", cached = "Cached", implicitlyCreated = "ImplicitlyCreated" }

    public let id: String
    public let url: String
    public let document: JSON
    public let kind: Kind
    public let createdAt: Date

    public init(id: String, url: String, document: JSON, kind: Kind, createdAt: Date) {
        self.id = id
        self.url = url
        self.document = document
        self.kind = kind
        self.createdAt = createdAt
    }

    /// A stable local id for a URL.
    public static func id(for url: String) -> String {
        SHA256.hash(data: Data(url.utf8)).prefix(12).map { String(format: "%02x", $0) }.joined()
    }
}

/// Where contexts are kept.
public protocol ContextStore: Sendable {
    func save(_ context: StoredContext) async throws
    func find(url: String) async throws -> StoredContext?
    func find(id: String) async throws -> StoredContext?
    func list() async throws -> [StoredContext]
    func delete(id: String) async throws -> Bool
}
