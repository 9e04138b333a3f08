import CityTwinApp
import Foundation
import Testing

struct ConfigurationFileTests {
    @Test func readsKeysStringsIntegersAndBooleans() throws {
        // given a file as an operator would write it
        let text = """
            # CityTwin at the 福田 operations centre
            host = "0.0.0.0"
            port = 8_080          # the usual port is taken
            database = 'postgres://citytwin:s#cret@db:5432/citytwin'
            allow-anonymous-writes = false
            public-url = "https://twin.example/\\u798F\\u7530"\r
            log-level="debug"
            """
        // when it is parsed
        let file = try ConfigurationFile.parse(text)
        // then every key has its value, comments and quotes taken off
        #expect(file["host"] == .string("0.0.0.0"))
        #expect(file["port"] == .integer(8080))
        #expect(file["database"] == .string("postgres://citytwin:s#cret@db:5432/citytwin"))
        #expect(file["allow-anonymous-writes"] == .boolean(false))
        #expect(file["public-url"] == .string("https://twin.example/福田"))
        #expect(file["log-level"] == .string("debug"))
        #expect(file.values.count == 6)
    }

    @Test(arguments: [
        ("port 8080", 1), ("port = ", 1), ("host = unquoted", 1), ("\nhost = \"open", 2), ("port = 1\nport = 2", 2),
        ("[server]", 1), ("port = 1 2", 1), ("host = \"a\\q\"", 1), ("港口 = 1", 1),
    ])
    func refusesWhatIsNotKeyEqualsValue(_ text: String, _ line: Int) {
        // given a malformed line, when parsed, then the error names that line
        #expect(throws: ConfigurationFile.ParseError.self) { try ConfigurationFile.parse(text) }
        do {
            _ = try ConfigurationFile.parse(text)
        } catch let error as ConfigurationFile.ParseError {
            #expect(error.line == line)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
