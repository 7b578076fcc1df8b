// Temporal's shard function, checked against an independent implementation: Tests/Fixtures/farmhash-fingerprint32.json
// holds Fingerprint32 of 307 inputs as the Go library Temporal links (dgryski/go-farm) computes them, agreeing with
// Google's C++ farmhash (PyPI pyfarmhash) — every length branch (0-4, 5-12, 13-24, longer, several 20-byte blocks),
// bytes above 0x7f (sign extension in the short branch) and namespaceId_workflowId keys.

import Foundation
import ShardRouting
import Testing

struct HistoryShardTests {
    private struct Vectors: Decodable {
        let vectors: [[Vector]]

        enum Vector: Decodable {
            case hex(String)
            case value(UInt32)

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) {
                    self = .hex(text)
                } else {
                    self = .value(try container.decode(UInt32.self))
                }
            }
        }
    }

    private static func vectors() throws -> [(bytes: [UInt8], fingerprint: UInt32)] {
        let decoded = try JSONDecoder().decode(
            Vectors.self, from: Data(contentsOf: fixtureURL("farmhash-fingerprint32.json")))
        return decoded.vectors.map { pair in
            guard case .hex(let hex) = pair[0], case .value(let value) = pair[1] else { fatalError("malformed vector") }
            return (hexBytes(hex), value)
        }
    }

    @Test func fingerprintsMatchTheGoLibraryTemporalUses() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count == 307)
        var lengths = Set<Int>()
        for (bytes, expected) in vectors {
            #expect(FarmHash.fingerprint32(bytes) == expected, "input of \(bytes.count) bytes: \(bytes)")
            lengths.insert(bytes.count)
        }
        // Every branch of the function is exercised.
        #expect(lengths.contains(0) && lengths.contains(4) && lengths.contains(5) && lengths.contains(12))
        #expect(lengths.contains(13) && lengths.contains(24) && lengths.contains(25) && lengths.contains(1000))
    }

    @Test func shardsAreTheFingerprintOfNamespaceIDAndWorkflowIDModuloTheCountPlusOne() {
        // Expected values from go-farm's Fingerprint32 of the joined key, reduced as Temporal's
        // WorkflowIDToHistoryShard reduces it.
        let cases: [(String, String, [(Int32, Int32)])] = [
            ("01a225c4-48c3-79ce-8e7b-135b5db83528", "orders-42", [(1, 1), (2, 2), (3, 2), (4, 4), (512, 48), (1000, 352)]),
            ("3f1c1d1e-0000-4000-8000-00000000abcd", "wf", [(1, 1), (2, 1), (3, 1), (4, 1), (512, 433), (1000, 153)]),
            ("ns", "", [(1, 1), (2, 1), (3, 3), (4, 1), (512, 225), (1000, 449)]),
        ]
        for (namespaceID, workflowID, shards) in cases {
            for (count, shard) in shards {
                #expect(HistoryShard.of(namespaceID: namespaceID, workflowID: workflowID, shardCount: count) == shard)
            }
        }
    }
}
