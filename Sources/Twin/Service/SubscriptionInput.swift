import CityKit
import Foundation
import Geo

/// Reads a subscription as a subscriber writes it (`POST /subscriptions`, or the result of a PATCH) and
/// checks every member, expanding names with the subscriber's @context.
struct SubscriptionInput {
    let context: LDContext

    /// Members the broker keeps itself: ignored when a subscriber sends them.
    static let brokerMembers: Set<String> = ["@context", "createdAt", "modifiedAt", "status"]
    static let brokerNotificationMembers: Set<String> = ["status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"]
    static let members: Set<String> = [
        "id", "type", "subscriptionName", "description", "entities", "watchedAttributes", "notificationTrigger", "timeInterval",
        "q", "geoQ", "isActive", "expiresAt", "throttling", "notification", "lang", "jsonldContext", "scopeQ", "csf", "temporalQ",
    ]

    /// The subscription that `json` describes; `id` is used when the body has none.
    func subscription(_ json: JSON, id defaultID: String) throws(NGSIError) -> Subscription {
        guard case .object(var body) = json else { throw .badData("a subscription is a JSON object") }
        for member in Self.brokerMembers { body[member] = nil }
        if case .object(var notification)? = body["notification"] {
            for member in Self.brokerNotificationMembers { notification[member] = nil }
            body["notification"] = .object(notification)
        }
        for key in body.keys where !Self.members.contains(key) {
            throw .badData("\(key) is not a member of a subscription")
        }
        for unsupported in ["scopeQ", "csf", "temporalQ"] where body[unsupported] != nil {
            throw NGSIError(.operationNotSupported, "\(unsupported) is not supported in subscriptions")
        }
        let id = body["id"] == nil ? defaultID : try Self.uri(body["id"], "id")
        body["id"] = .string(id)
        guard body["type"] == "Subscription" else { throw .badData("a subscription's type must be \"Subscription\"") }
        for text in ["subscriptionName", "description"] where body[text] != nil {
            guard body[text]?.stringValue != nil else { throw .badData("\(text) must be a string") }
        }

        let entities = try selectors(body["entities"])
        let watched = try names(body["watchedAttributes"], "watchedAttributes")
        let timeInterval = try positiveNumber(body["timeInterval"], "timeInterval")
        let throttling = try positiveNumber(body["throttling"], "throttling")
        if entities.isEmpty && watched == nil { throw .badData("a subscription needs entities or watchedAttributes") }
        if timeInterval != nil && watched != nil { throw .badData("timeInterval and watchedAttributes cannot be combined") }
        if timeInterval != nil && throttling != nil { throw .badData("timeInterval and throttling cannot be combined") }
        var triggers = NotificationTrigger.defaults
        if let value = body["notificationTrigger"] {
            guard case .array(let items) = value, !items.isEmpty else { throw .badData("notificationTrigger must be a non-empty array") }
            triggers = []
            for item in items {
                guard let name = item.stringValue, let trigger = NotificationTrigger(rawValue: name) else {
                    throw .badData("notificationTrigger values are \(NotificationTrigger.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                triggers.insert(trigger)
            }
        }
        var q: QExpression?
        if let value = body["q"] {
            guard let text = value.stringValue else { throw .badData("q must be a string") }
            q = try QParser.parse(text).mapNames(context.expand)
        }
        let geo = try geoQuery(body["geoQ"])
        var isActive = true
        if let value = body["isActive"] {
            guard case .bool(let b) = value else { throw .badData("isActive must be true or false") }
            isActive = b
        }
        var expiresAt: Date?
        if let value = body["expiresAt"] {
            guard let text = value.stringValue, let date = Timestamp.parse(text) else { throw .badData("expiresAt must be a date-time") }
            expiresAt = date
        }
        var lang: String?
        if let value = body["lang"] {
            guard let text = value.stringValue, !text.isEmpty else { throw .badData("lang must be a language tag") }
            lang = text
        }
        if let value = body["jsonldContext"] { _ = try Self.uri(value, "jsonldContext") }
        guard case .object(let notification)? = body["notification"] else { throw .badData("a subscription needs a notification object") }
        let n = try notificationParameters(notification)
        return Subscription(
            id: id, entities: entities, watchedAttributes: watched.map(Set.init), triggers: triggers, timeInterval: timeInterval, q: q, geo: geo,
            isActive: isActive, expiresAt: expiresAt, throttling: throttling, attributes: n.attributes, format: n.format,
            showChanges: n.showChanges, sysAttrs: n.sysAttrs, lang: lang, endpoint: n.endpoint, given: body)
    }

    static func uri(_ value: JSON?, _ member: String) throws(NGSIError) -> String {
        guard let text = value?.stringValue, EntityInput.isURI(text) else { throw .badData("\(member) must be a URI") }
        return text
    }

    func selectors(_ value: JSON?) throws(NGSIError) -> [EntitySelector] {
        guard let value else { return [] }
        guard case .array(let items) = value, !items.isEmpty else { throw .badData("entities must be a non-empty array") }
        var out: [EntitySelector] = []
        for item in items {
            guard case .object(let o) = item else { throw .badData("each member of entities is an object") }
            for key in o.keys where !["id", "idPattern", "type"].contains(key) { throw .badData("\(key) is not a member of an entity selector") }
            guard let typeText = o["type"]?.stringValue else { throw .badData("each member of entities needs a type") }
            let type = try TypeExpression.parse(typeText)
            for name in type.names where !EntityInput.isValidName(name) { throw .badData("\(name) is not a valid entity type name") }
            var selector = EntitySelector(type: type.mapNames(context.expand))
            if o["id"] != nil { selector.id = try Self.uri(o["id"], "entities.id") }
            if let pattern = o["idPattern"] {
                guard let text = pattern.stringValue, text.count <= 256, (try? NSRegularExpression(pattern: text)) != nil else {
                    throw .badData("entities.idPattern is not a valid regular expression")
                }
                selector.idPattern = text
            }
            out.append(selector)
        }
        return out
    }

    func names(_ value: JSON?, _ member: String) throws(NGSIError) -> [String]? {
        guard let value else { return nil }
        guard case .array(let items) = value, !items.isEmpty else { throw .badData("\(member) must be a non-empty array of attribute names") }
        var out: [String] = []
        for item in items {
            guard let name = item.stringValue, EntityInput.isValidName(name) else { throw .badData("\(member) must hold attribute names") }
            out.append(context.expand(name))
        }
        return out
    }

    func positiveNumber(_ value: JSON?, _ member: String) throws(NGSIError) -> Double? {
        guard let value else { return nil }
        guard let n = value.numberValue, n.isFinite, n > 0, n <= 31_536_000 else { throw .badData("\(member) must be a positive number of seconds") }
        return n
    }

    func geoQuery(_ value: JSON?) throws(NGSIError) -> GeoFilter? {
        guard let value else { return nil }
        guard case .object(let o) = value else { throw .badData("geoQ must be an object") }
        var p = EntityService.QueryParameters()
        p.georel = o["georel"]?.stringValue
        p.geometry = o["geometry"]?.stringValue
        switch o["coordinates"] {
        case .string(let text)?: p.coordinates = text
        case let coordinates?: p.coordinates = JSONCoding.string(coordinates)
        case nil: break
        }
        p.geoproperty = o["geoproperty"]?.stringValue
        return try EntityService.geoFilter(p, context: context)
    }

    struct NotificationParameters {
        var attributes: Set<String>?
        var format = RepresentationFormat.normalized
        var showChanges = false
        var sysAttrs = false
        var endpoint: NotificationEndpoint
    }

    static let notificationMembers: Set<String> = ["attributes", "format", "showChanges", "sysAttrs", "endpoint"]

    func notificationParameters(_ o: [String: JSON]) throws(NGSIError) -> NotificationParameters {
        for key in o.keys where !Self.notificationMembers.contains(key) { throw .badData("\(key) is not a member of notification") }
        guard case .object(let e)? = o["endpoint"] else { throw .badData("notification needs an endpoint") }
        for key in e.keys where !["uri", "accept", "receiverInfo", "notifierInfo"].contains(key) { throw .badData("\(key) is not a member of endpoint") }
        let uri = try Self.uri(e["uri"], "notification.endpoint.uri")
        guard let url = URL(string: uri), let schemeText = url.scheme?.lowercased(), let scheme = NotificationEndpoint.Scheme(rawValue: schemeText),
            let host = url.host, !host.isEmpty
        else {
            throw .badData("notification.endpoint.uri must be an http, https, mqtt or mqtts URL with a host")
        }
        if (scheme == .mqtt || scheme == .mqtts) && url.path.count <= 1 { throw .badData("an MQTT endpoint names its topic in the path") }
        var accept = "application/json"
        if let value = e["accept"] {
            guard let text = value.stringValue, ["application/json", "application/ld+json", "application/geo+json"].contains(text) else {
                throw .badData("endpoint.accept must be application/json, application/ld+json or application/geo+json")
            }
            accept = text
        }
        var receiverInfo: [(key: String, value: String)] = []
        if let value = e["receiverInfo"] {
            guard case .array(let items) = value else { throw .badData("receiverInfo must be an array of {key, value}") }
            for item in items {
                guard let key = item["key"]?.stringValue, let v = item["value"]?.stringValue, Self.isHeaderName(key), Self.isHeaderValue(v) else {
                    throw .badData("receiverInfo must be an array of {key, value} with a valid header name and value")
                }
                receiverInfo.append((key, v))
            }
        }
        var out = NotificationParameters(endpoint: NotificationEndpoint(uri: uri, scheme: scheme, accept: accept, receiverInfo: receiverInfo))
        out.attributes = try names(o["attributes"], "notification.attributes").map(Set.init)
        if let value = o["format"] {
            guard let text = value.stringValue else { throw .badData("notification.format must be a string") }
            out.format = try RepresentationFormat.parse(format: text, options: [])
        }
        for flag in ["showChanges", "sysAttrs"] {
            guard let value = o[flag] else { continue }
            guard case .bool(let b) = value else { throw .badData("notification.\(flag) must be true or false") }
            if flag == "showChanges" { out.showChanges = b } else { out.sysAttrs = b }
        }
        return out
    }

    static func isHeaderName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 256 && s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "!#$%&'*+-.^_`|~".unicodeScalars.contains($0)) }
    }

    static func isHeaderValue(_ s: String) -> Bool {
        s.count <= 4096 && !s.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\0" }
    }
}
