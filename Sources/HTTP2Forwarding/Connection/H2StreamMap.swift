// A map from stream id to what a connection keeps per stream: the engine's stream states and write queues, and the
// proxy's calls by stream.
//
// A Swift Dictionary hashes every key with SipHash through `Hasher`, which cost more per call than the stream
// bookkeeping it served (about 2 300 instructions per forwarded call in the engine alone). Stream ids are 31-bit
// integers a peer chooses in increasing order, so this is an open-addressing table with linear probing: the id,
// mixed with a random per-process value so that a peer cannot pick ids that collide, times a Fibonacci constant,
// top bits for the slot. Removal shifts the following entries back (no tombstones), the table doubles past half
// full and halves again (down to 64 slots) when a burst of streams has gone, so a connection does not keep the
// memory of its busiest moment.
// Stream 0 (the connection) is never a key: its slot value marks an empty slot.

public struct H2StreamMap<Value> {
    /// 0 marks an empty slot.
    @usableFromInline var keys: [UInt32]
    @usableFromInline var values: [Value?]
    /// Slots - 1 (slots are a power of two).
    @usableFromInline var mask: Int
    /// 32 - log2(slots): the hash's top bits pick the slot.
    @usableFromInline var shift: UInt32
    @usableFromInline let seed: UInt32
    @usableFromInline var storedCount: Int

    @usableFromInline static var minimumSlots: Int { 8 }
    @usableFromInline static var shrinkFloor: Int { 64 }

    @inlinable
    public init() {
        keys = Array(repeating: 0, count: Self.minimumSlots)
        values = Array(repeating: nil, count: Self.minimumSlots)
        mask = Self.minimumSlots - 1
        shift = 32 - UInt32(Self.minimumSlots.trailingZeroBitCount)
        seed = H2StreamMapSeed.value
        storedCount = 0
    }

    /// The number of entries.
    @inlinable
    public var count: Int { storedCount }

    @inlinable
    public var isEmpty: Bool { storedCount == 0 }

    @inlinable
    func home(of key: UInt32) -> Int {
        Int(truncatingIfNeeded: ((key ^ seed) &* 0x9E37_79B1) >> shift)
    }

    /// The slot holding `key`, nil if it is not in the map.
    @inlinable
    func slot(of key: UInt32) -> Int? {
        var slot = home(of: key)
        while true {
            let found = keys[slot]
            if found == key { return slot }
            if found == 0 { return nil }
            slot = (slot &+ 1) & mask
        }
    }

    /// The value for `key`; setting nil removes it.
    @inlinable
    public subscript(key: UInt32) -> Value? {
        get {
            guard let slot = slot(of: key) else { return nil }
            return values[slot]
        }
        set {
            if let newValue {
                insert(newValue, forKey: key)
            } else {
                removeValue(forKey: key)
            }
        }
    }

    @inlinable
    public func contains(_ key: UInt32) -> Bool {
        slot(of: key) != nil
    }

    /// Runs `body` on the value for `key` in place; nil (and `body` not run) if there is none.
    @inlinable
    public mutating func modify<Result>(_ key: UInt32, _ body: (inout Value) throws -> Result) rethrows -> Result? {
        guard let slot = slot(of: key) else { return nil }
        return try body(&values[slot]!)
    }

    /// The first empty slot from `key`'s home on, where it goes when it is not in the map.
    @inlinable
    func emptySlot(for key: UInt32) -> Int {
        var slot = home(of: key)
        while keys[slot] != 0 {
            slot = (slot &+ 1) & mask
        }
        return slot
    }

    /// Sets the value for `key`, replacing any.
    @inlinable
    public mutating func insert(_ value: Value, forKey key: UInt32) {
        precondition(key != 0, "stream 0 is not a stream")
        if let slot = slot(of: key) {
            values[slot] = value
            return
        }
        if (storedCount + 1) * 2 > keys.count {
            resize(slots: keys.count * 2)
        }
        let slot = emptySlot(for: key)
        keys[slot] = key
        values[slot] = value
        storedCount += 1
    }

    /// Removes the value for `key` and returns it, nil if there was none.
    @inlinable
    @discardableResult
    public mutating func removeValue(forKey key: UInt32) -> Value? {
        guard var hole = slot(of: key) else { return nil }
        let removed = values[hole]
        // Backward shift: an entry after the hole moves into it when its home slot is at or before the hole, so
        // every entry stays reachable from its home without gaps.
        var next = (hole &+ 1) & mask
        while keys[next] != 0 {
            let distanceFromHome = (next &- home(of: keys[next])) & mask
            let distanceFromHole = (next &- hole) & mask
            if distanceFromHome >= distanceFromHole {
                keys[hole] = keys[next]
                values.swapAt(hole, next)
                hole = next
            }
            next = (next &+ 1) & mask
        }
        keys[hole] = 0
        values[hole] = nil
        storedCount -= 1
        // Down to 64 slots only: a connection whose calls come and go around a few dozen would otherwise resize
        // back and forth with them.
        if keys.count > Self.shrinkFloor, storedCount * 8 < keys.count {
            resize(slots: keys.count / 2)
        }
        return removed
    }

    @inlinable
    public mutating func removeAll() {
        self = H2StreamMap()
    }

    /// The keys, in no particular order.
    @inlinable
    public var streamIDs: [UInt32] {
        keys.filter { $0 != 0 }
    }

    /// The values, in no particular order.
    @inlinable
    public var allValues: [Value] {
        values.compactMap { $0 }
    }

    /// Runs `body` on every value in place.
    @inlinable
    public mutating func modifyAll(_ body: (UInt32, inout Value) throws -> Void) rethrows {
        for slot in keys.indices where keys[slot] != 0 {
            try body(keys[slot], &values[slot]!)
        }
    }

    @inlinable
    mutating func resize(slots: Int) {
        let oldKeys = keys
        var oldValues = values
        keys = Array(repeating: 0, count: slots)
        values = Array(repeating: nil, count: slots)
        mask = slots - 1
        shift = 32 - UInt32(slots.trailingZeroBitCount)
        for index in oldKeys.indices where oldKeys[index] != 0 {
            let slot = emptySlot(for: oldKeys[index])
            keys[slot] = oldKeys[index]
            swap(&values[slot], &oldValues[index])
        }
    }
}

extension H2StreamMap: Sendable where Value: Sendable {}

/// The random value every stream map mixes into its ids (one per process).
@usableFromInline
enum H2StreamMapSeed {
    @usableFromInline static let value = UInt32.random(in: .min ... .max)
}
