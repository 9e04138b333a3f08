import CityKit

/// What `attr_values` holds for an entity: one row per distinct value of each attribute whose value
/// (Property `value`, DateTime `@value`, Relationship `object`, VocabProperty `vocab`) is a number or a string,
/// one per language of a LanguageProperty, so that `name=="福田站"` finds it in any language, and one per
/// number or string element of an array value, so that `tags=="公园"` finds `["公园", "湖"]`.
///
/// `q` comparisons of a top-level attribute with a number or a string read these rows through the table's
/// key; everything else (sub-attributes, metadata, compound members, regular expressions) reads the JSON.
/// Writes change only the rows whose values changed.
enum AttributeValueIndex {
    struct Row: Sendable, Hashable {
        let name: String
        /// `n` for numbers, `s` for strings.
        let kind: String
        let number: Double
        let text: String
    }

    static func rows(of entity: Entity?) -> Set<Row> {
        guard let entity else { return [] }
        var rows = Set<Row>()
        for (name, instances) in entity.attributes {
            for instance in instances {
                if case .object(let map)? = instance["languageMap"] {
                    for case .string(let text) in map.values { rows.insert(Row(name: name, kind: "s", number: 0, text: text)) }
                    continue
                }
                guard let value = instance["value"] ?? instance["object"] ?? instance["vocab"] else { continue }
                switch value {
                case .integer, .double: rows.insert(Row(name: name, kind: "n", number: value.numberValue!, text: ""))
                case .string(let s): rows.insert(Row(name: name, kind: "s", number: 0, text: s))
                case .array(let items):
                    for item in items {
                        switch item {
                        case .integer, .double: rows.insert(Row(name: name, kind: "n", number: item.numberValue!, text: ""))
                        case .string(let s): rows.insert(Row(name: name, kind: "s", number: 0, text: s))
                        default: continue
                        }
                    }
                case .object(let o):
                    if case .string(let s)? = o["@value"] { rows.insert(Row(name: name, kind: "s", number: 0, text: s)) }
                default: continue
                }
            }
        }
        return rows
    }
}
