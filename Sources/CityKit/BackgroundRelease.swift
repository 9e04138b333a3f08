/// Frees a large value (many small objects: rows, entities) on a background task rather than on the caller's
/// thread, when the caller is on a path others wait for, such as the single write transaction.
public func releaseInBackground<T: Sendable>(_ value: consuming T) {
    let box = value
    Task.detached(priority: .background) { withExtendedLifetime(box) {} }
}
