// The stream map against a Dictionary: the same answers after every operation of long seeded sequences (inserts,
// replacements, removals in any order, which shift entries back, growth and shrinking), with ids as a client
// opens them and as random 31-bit numbers; and its in-place changes.

import TestSupport
import Testing

@testable import HTTP2Forwarding

@Suite struct H2StreamMapTests {
    private func check(_ map: H2StreamMap<Int>, against reference: [UInt32: Int], probes: [UInt32]) {
        #expect(map.count == reference.count)
        #expect(Set(map.streamIDs) == Set(reference.keys))
        #expect(map.allValues.sorted() == reference.values.sorted())
        for id in probes {
            #expect(map[id] == reference[id], "stream \(id)")
        }
    }

    @Test func randomOperationsAnswerAsADictionaryDoes() {
        for (seed, randomIDs) in [(UInt64(1), false), (2, true), (3, false), (4, true)] {
            var random = SeededGenerator(seed: seed)
            var map = H2StreamMap<Int>()
            var reference: [UInt32: Int] = [:]
            var nextClientID: UInt32 = 1
            var opened: [UInt32] = []
            for step in 0..<20_000 {
                let roll = Int.random(in: 0..<10, using: &random)
                if roll < 5 || opened.isEmpty {
                    // Open: the next odd id, or any id.
                    let id: UInt32
                    if randomIDs {
                        id = UInt32.random(in: 1...0x7FFF_FFFF, using: &random)
                    } else {
                        id = nextClientID
                        nextClientID += 2
                    }
                    map[id] = step
                    reference[id] = step
                    opened.append(id)
                } else if roll < 8 {
                    // Close one of the open streams, any of them.
                    let id = opened.remove(at: Int.random(in: 0..<opened.count, using: &random))
                    #expect(map.removeValue(forKey: id) == reference.removeValue(forKey: id))
                } else if roll < 9 {
                    let id = opened.randomElement(using: &random)!
                    map.modify(id) { $0 += 1 }
                    reference[id]! += 1
                } else {
                    // An id that is not there.
                    let id = UInt32.random(in: 1...0x7FFF_FFFF, using: &random)
                    #expect(map.removeValue(forKey: id) == reference.removeValue(forKey: id))
                    opened.removeAll { $0 == id }
                }
                // Now and then close most streams: the table shrinks and must still find the rest.
                if step % 5000 == 4999 {
                    while opened.count > 3 {
                        let id = opened.removeLast()
                        #expect(map.removeValue(forKey: id) != nil)
                        reference.removeValue(forKey: id)
                    }
                }
                if step % 97 == 0 {
                    check(map, against: reference, probes: Array(opened.suffix(20)) + [nextClientID, 0x7FFF_FFFF])
                }
            }
            check(map, against: reference, probes: opened)
        }
    }

    @Test func changesInPlaceAndEmptying() {
        var map = H2StreamMap<[Int]>()
        #expect(map.isEmpty)
        #expect(map.modify(1) { $0.append(1) } == nil)
        for id in stride(from: UInt32(1), through: 201, by: 2) {
            map[id] = [Int(id)]
        }
        #expect(map.count == 101)
        map.modify(99) { $0.append(100) }
        #expect(map[99] == [99, 100])
        map.modifyAll { id, value in value.append(Int(id) * 2) }
        #expect(map[1] == [1, 2])
        #expect(map[99] == [99, 100, 198])
        #expect(map.contains(201) && !map.contains(203))
        map[201] = nil
        #expect(!map.contains(201) && map.count == 100)
        map.removeAll()
        #expect(map.isEmpty && map[1] == nil)
    }
}
