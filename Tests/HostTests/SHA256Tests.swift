// SHA-256 as the host names plugin builds with it: FIPS 180-4's examples, the same digest whatever the pieces it is
// fed in, and the digest of a file as `sha256sum` gives it (the tool operators compare with).

import Foundation
import XCTest

@testable import Host

final class SHA256Tests: XCTestCase {
    private func digest(_ text: String) -> String {
        var hash = SHA256()
        hash.update(Array(text.utf8))
        return hash.finish()
    }

    func testTheStandardsExamples() {
        XCTAssertEqual(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        XCTAssertEqual(
            digest(String(repeating: "a", count: 1_000_000)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        )
    }

    func testPiecesOfAnySizeGiveTheDigestOfTheWhole() {
        // Lengths around the block (64) and padding (56) boundaries, fed in pieces from a fixed sequence of sizes.
        let sizes = [1, 7, 55, 56, 57, 63, 64, 65, 3, 120, 200]
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var whole = SHA256()
            whole.update(bytes)
            var pieces = SHA256()
            var offset = 0
            var turn = 0
            while offset < bytes.count {
                let size = min(sizes[turn % sizes.count], bytes.count - offset)
                pieces.update(Array(bytes[offset..<offset + size]))
                offset += size
                turn += 1
            }
            XCTAssertEqual(pieces.finish(), whole.finish(), "length \(length)")
        }
    }

    func testAFilesDigestIsTheOneSha256sumGives() throws {
        let path = NSTemporaryDirectory() + "sha256-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        // More than one 64 KiB read, not a multiple of the block size.
        let bytes = (0..<200_003).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        let line = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let expected = String(line.prefix(64))
        XCTAssertEqual(expected.count, 64, line)
        XCTAssertEqual(SHA256.hex(ofFileAt: path), expected)
        XCTAssertNil(SHA256.hex(ofFileAt: path + "-missing"))
    }
}
