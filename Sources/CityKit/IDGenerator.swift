import Foundation

/// Makes identifiers; injected so that tests can predict them.
public protocol IDGenerator: Sendable {
    func next() -> String
}

public struct RandomIDGenerator: IDGenerator {
    public init() {}
    public func next() -> String { UUID().uuidString.lowercased() }
}
