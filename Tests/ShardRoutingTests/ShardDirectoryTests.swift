// ShardDirectory driven event by event: the newest registration wins, a stream that ended cannot remove a newer one,
// a late registration older than a withdrawal stays withdrawn, ties are broken the same way everywhere, and the same
// announcements in any order and any number of times leave every replica with the same owners (seeded).

import ShardRouting
import TestSupport
import Testing

struct ShardDirectoryTests {
    private func registered(_ shard: Int32, _ replica: String, _ time: UInt64) -> ShardDirectory.Event {
        .init(shard: shard, replica: replica, time: time, kind: .registered)
    }

    private func withdrawn(_ shard: Int32, _ replica: String, _ time: UInt64) -> ShardDirectory.Event {
        .init(shard: shard, replica: replica, time: time, kind: .withdrawn)
    }

    @Test func theNewestRegistrationWinsWhicheverArrivesFirst() {
        var first = ShardDirectory(localReplica: "a")
        #expect(first.apply(registered(1, "a", 5)) == .init(shard: 1, from: nil, to: "a"))
        #expect(first.apply(registered(1, "b", 3)) == nil)
        #expect(first.owner(of: 1) == "a")
        var second = ShardDirectory(localReplica: "b")
        second.apply(registered(1, "b", 3))
        #expect(second.apply(registered(1, "a", 5)) == .init(shard: 1, from: "b", to: "a"))
        #expect(second.owner(of: 1) == "a")
    }

    @Test func anEndedStreamCannotRemoveANewerOne() {
        var directory = ShardDirectory(localReplica: "a")
        directory.apply(registered(2, "a", 5))
        directory.apply(registered(2, "b", 7))
        #expect(directory.apply(withdrawn(2, "a", 5)) == nil)
        #expect(directory.owner(of: 2) == "b")
        #expect(directory.localRegistrations.isEmpty)
        #expect(directory.apply(withdrawn(2, "b", 7)) == .init(shard: 2, from: "b", to: nil))
    }

    @Test func aLateRegistrationOlderThanItsWithdrawalStaysWithdrawn() {
        var directory = ShardDirectory(localReplica: "a")
        directory.apply(withdrawn(3, "b", 9))
        #expect(directory.apply(registered(3, "b", 9)) == nil)
        #expect(directory.apply(registered(3, "c", 8)) == nil)
        #expect(directory.owner(of: 3) == nil)
        #expect(directory.apply(registered(3, "c", 10)) == .init(shard: 3, from: nil, to: "c"))
    }

    @Test func tiesGoToTheSameReplicaEverywhereAndALostReplicaLosesItsShards() {
        var directory = ShardDirectory(localReplica: "a")
        directory.apply(registered(4, "a", 5))
        directory.apply(registered(4, "b", 5))
        #expect(directory.owner(of: 4) == "b")
        directory.apply(registered(5, "b", 1))
        directory.apply(registered(6, "a", 1))
        #expect(directory.peerLost("b") == [.init(shard: 4, from: "b", to: nil), .init(shard: 5, from: "b", to: nil)])
        #expect(directory.owner(of: 4) == nil && directory.owner(of: 6) == "a")
        #expect(directory.localRegistrations == [registered(6, "a", 1)])
    }

    @Test func theSameAnnouncementsInAnyOrderLeaveTheSameOwners() {
        var generator = SeededGenerator(seed: 0xD1_2EC7)
        let replicas = ["a", "b", "c"]
        for _ in 0..<200 {
            var events: [ShardDirectory.Event] = []
            for _ in 0..<Int.random(in: 1...40, using: &generator) {
                let shard = Int32.random(in: 1...6, using: &generator)
                let replica = replicas.randomElement(using: &generator)!
                let time = UInt64.random(in: 1...12, using: &generator)
                events.append(registered(shard, replica, time))
                if Bool.random(using: &generator) { events.append(withdrawn(shard, replica, time)) }
            }
            var reference: [Int32: String?]?
            for _ in 0..<4 {
                var directory = ShardDirectory(localReplica: "a")
                var delivered = events.shuffled(using: &generator)
                delivered += events.filter { _ in Bool.random(using: &generator) }  // some arrive twice
                for event in delivered.shuffled(using: &generator) { directory.apply(event) }
                let owners = Dictionary(uniqueKeysWithValues: (1...6).map { (Int32($0), directory.owner(of: Int32($0))) })
                if let reference {
                    #expect(owners == reference)
                } else {
                    reference = owners
                }
            }
        }
    }
}
