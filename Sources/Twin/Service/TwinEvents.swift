import Storage

/// Events copies sharing one PostgreSQL tell each other (`LISTEN`/`NOTIFY` on one channel), sent in the
/// transaction of the change they announce: subscriptions changed (reload them), notifications wait in the
/// outbox for any copy (claim them).
public enum TwinEvents {
    public static let channel = "citytwin_twin"
    public static let subscriptionsChanged = "subscriptions"
    public static let outboxWaiting = "outbox"

    /// Dispatches this channel's events to the matcher and the deliverer of this copy, until cancelled.
    public static func listen(on database: Database, matcher: SubscriptionMatcher, deliverer: NotificationDeliverer) async {
        await database.listen(channel) { payload in
            switch payload {
            case subscriptionsChanged: matcher.invalidate()
            case outboxWaiting: deliverer.wake()
            default: break
            }
        }
    }
}
