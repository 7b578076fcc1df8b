// Text that leaves the plugin through C: the host's error buffer, and stderr before the host can log for us.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

enum ErrorText {
    /// Writes `message` into the host's buffer of `capacity` bytes as a NUL-terminated string, truncated to fit on
    /// a UTF-8 character boundary (and at an embedded NUL, which C would stop at anyway). A NULL buffer or a zero
    /// capacity writes nothing.
    static func store(_ message: String, in buffer: UnsafeMutablePointer<CChar>?, capacity: Int) {
        guard let buffer, capacity > 0 else { return }
        var utf8 = Array(message.utf8)
        if let nul = utf8.firstIndex(of: 0) {
            utf8.removeSubrange(nul...)
        }
        var count = min(utf8.count, capacity - 1)
        if count < utf8.count {
            // utf8[count] is the first byte left out; if it continues a character, leave out that character whole.
            while count > 0 && utf8[count] & 0xC0 == 0x80 {
                count -= 1
            }
        }
        utf8.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(start: buffer, count: count)
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[..<count]))
        }
        buffer[count] = 0
    }

    /// Writes one line to stderr; for refusing a host in `s2s_plugin_entry`, where the ABI says to explain there.
    static func printToStandardError(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { utf8 in
            var remaining = UnsafeRawBufferPointer(utf8)
            while !remaining.isEmpty {
                let written = write(2, remaining.baseAddress, remaining.count)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                remaining = UnsafeRawBufferPointer(rebasing: remaining[written...])
            }
        }
    }
}
