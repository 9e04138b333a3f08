import Foundation

/// Which database the platform runs on: an embedded SQLite file or a PostgreSQL server.
public enum Backend: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// Parses `sqlite:///path/file.sqlite` or `postgres://user:pass@host:port/db`.
    public static func parse(_ url: String) throws(StorageError) -> Backend {
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw .invalidURL(url) }
            return .sqlite(path: path)
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return .postgres(try PostgresLocation(url: url))
        }
        throw .invalidURL(url)
    }

    public var kind: DialectKind {
        switch self {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite://\(path)"
        case .postgres(let location): location.description
        }
    }
}

/// The SQL dialects CityTwin speaks.
public enum DialectKind: String, Sendable, Equatable {
    case sqlite, postgres
}

/// Where a PostgreSQL database is, parsed from a `postgres://` URL; the password is never printed.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var requireTLS: Bool

    public init(url: String) throws(StorageError) {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw .invalidURL("postgres URL without a host")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? self.username : path
        let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        self.requireTLS = ["require", "verify-ca", "verify-full"].contains(sslmode)
    }

    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    /// The same server with another database name.
    public func with(database: String) -> PostgresLocation {
        var copy = self
        copy.database = database
        return copy
    }
}

public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidURL(String)
    case closed
    case migrationFailed(String)
    /// Rows bound one by one go only to SQLite's writer.
    case notTheWriter
    /// A row the database returned is not of the shape the query asked for.
    case unexpectedRow(String)

    public var description: String {
        switch self {
        case .invalidURL(let url): "not a database URL: \(url) (use sqlite:///path/file.sqlite or postgres://user:password@host:port/database)"
        case .closed: "the database is closed"
        case .migrationFailed(let reason): "migration failed: \(reason)"
        case .notTheWriter: "rows bound one by one are written only on SQLite's writer connection"
        case .unexpectedRow(let what): "the database returned \(what)"
        }
    }
}
