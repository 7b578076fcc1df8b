// Which history shard of a Temporal cluster a workflow lives on: Temporal hashes `namespaceId + "_" + workflowId`
// with FarmHash's Fingerprint32 (the "mk" variant of Hash32, whose output Google's farmhash promises never to
// change) and takes it modulo the cluster's shard count, plus one (shard ids start at 1).
//
// Routing mode must agree with Temporal to the bit: a task sent to another shard than the one that owns its workflow
// is applied by the wrong shard. Tests/ShardRoutingTests check this file against vectors produced by the Go library
// Temporal itself links (dgryski/go-farm) and by Google's C++ farmhash.

/// Temporal's assignment of workflows to history shards.
public enum HistoryShard {
    /// The shard (1...`shardCount`) that owns the workflow `workflowID` of the namespace with id `namespaceID`.
    public static func of(namespaceID: some StringProtocol, workflowID: some StringProtocol, shardCount: Int32) -> Int32 {
        precondition(shardCount > 0, "a cluster has at least one history shard")
        var key = [UInt8]()
        key.reserveCapacity(namespaceID.utf8.count + 1 + workflowID.utf8.count)
        key.append(contentsOf: namespaceID.utf8)
        key.append(UInt8(ascii: "_"))
        key.append(contentsOf: workflowID.utf8)
        return Int32(FarmHash.fingerprint32(key) % UInt32(shardCount)) + 1
    }
}

/// FarmHash Fingerprint32.
public enum FarmHash {
    private static let c1: UInt32 = 0xcc9e_2d51
    private static let c2: UInt32 = 0x1b87_3593

    /// The 32-bit fingerprint of `bytes`.
    public static func fingerprint32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { fingerprint32($0) }
    }

    /// The 32-bit fingerprint of `bytes`.
    public static func fingerprint32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let length = bytes.count
        if length <= 4 { return upTo4(bytes) }
        if length <= 12 { return from5To12(bytes) }
        if length <= 24 { return from13To24(bytes) }
        return longer(bytes)
    }

    // MARK: Pieces

    /// The little-endian 32-bit word at `offset`.
    @inline(__always)
    private static func word(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Rotation to the right.
    @inline(__always)
    private static func rotate(_ value: UInt32, _ shift: UInt32) -> UInt32 {
        shift == 0 ? value : (value >> shift) | (value << (32 - shift))
    }

    /// The final avalanche (MurmurHash3's fmix32).
    @inline(__always)
    private static func mix(_ value: UInt32) -> UInt32 {
        var h = value
        h ^= h >> 16
        h &*= 0x85eb_ca6b
        h ^= h >> 13
        h &*= 0xc2b2_ae35
        h ^= h >> 16
        return h
    }

    /// One MurmurHash3-style step folding `a` into `h`.
    @inline(__always)
    private static func mur(_ a: UInt32, _ h: UInt32) -> UInt32 {
        var a = a &* c1
        a = rotate(a, 17)
        a &*= c2
        var h = h ^ a
        h = rotate(h, 19)
        return h &* 5 &+ 0xe654_6b64
    }

    private static func upTo4(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var b: UInt32 = 0
        var c: UInt32 = 9
        for byte in bytes {
            // Each byte as a signed char, widened with its sign.
            let value = UInt32(bitPattern: Int32(Int8(bitPattern: byte)))
            b = b &* c1 &+ value
            c ^= b
        }
        return mix(mur(b, mur(UInt32(bytes.count), c)))
    }

    private static func from5To12(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let length = bytes.count
        var a = UInt32(length)
        var b = UInt32(length) &* 5
        var c: UInt32 = 9
        let d = b
        a &+= word(bytes, 0)
        b &+= word(bytes, length - 4)
        c &+= word(bytes, (length >> 1) & 4)
        return mix(mur(c, mur(b, mur(a, d))))
    }

    private static func from13To24(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let length = bytes.count
        var a = word(bytes, (length >> 1) - 4)
        let b = word(bytes, 4)
        let c = word(bytes, length - 8)
        let d = word(bytes, length >> 1)
        let e = word(bytes, 0)
        let f = word(bytes, length - 4)
        var h = d &* c1 &+ UInt32(length)
        a = rotate(a, 12) &+ f
        h = mur(c, h) &+ a
        a = rotate(a, 3) &+ c
        h = mur(e, h) &+ a
        a = rotate(a &+ f, 12) &+ d
        h = mur(b, h) &+ a
        return mix(h)
    }

    private static func longer(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let length = bytes.count
        var h = UInt32(truncatingIfNeeded: length)
        var g = c1 &* h
        var f = g
        func scrambled(_ offset: Int) -> UInt32 { rotate(word(bytes, offset) &* c1, 17) &* c2 }
        let a0 = scrambled(length - 4)
        let a1 = scrambled(length - 8)
        let a2 = scrambled(length - 16)
        let a3 = scrambled(length - 12)
        let a4 = scrambled(length - 20)
        h ^= a0
        h = rotate(h, 19) &* 5 &+ 0xe654_6b64
        h ^= a2
        h = rotate(h, 19) &* 5 &+ 0xe654_6b64
        g ^= a1
        g = rotate(g, 19) &* 5 &+ 0xe654_6b64
        g ^= a3
        g = rotate(g, 19) &* 5 &+ 0xe654_6b64
        f &+= a4
        f = rotate(f, 19) &+ 113
        // Blocks of 20 bytes from the start; the last bytes were folded in above.
        var offset = 0
        for _ in 0..<((length - 1) / 20) {
            let a = word(bytes, offset)
            let b = word(bytes, offset + 4)
            let c = word(bytes, offset + 8)
            let d = word(bytes, offset + 12)
            let e = word(bytes, offset + 16)
            h &+= a
            g &+= b
            f &+= c
            h = mur(d, h) &+ e
            g = mur(c, g) &+ a
            f = mur(b &+ e &* c1, f) &+ d
            f &+= g
            g &+= f
            offset += 20
        }
        g = rotate(g, 11) &* c1
        g = rotate(g, 17) &* c1
        f = rotate(f, 11) &* c1
        f = rotate(f, 17) &* c1
        h = rotate(h &+ g, 19)
        h = h &* 5 &+ 0xe654_6b64
        h = rotate(h, 17) &* c1
        h = rotate(h &+ f, 19)
        h = h &* 5 &+ 0xe654_6b64
        h = rotate(h, 17) &* c1
        return h
    }
}
