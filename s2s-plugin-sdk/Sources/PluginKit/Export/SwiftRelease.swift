// The Swift release this code was compiled with, as "major.minor". A Swift plugin runs on the Swift runtime of the
// process that loads it (the host's), so a plugin built with another release may fail to load or misbehave: the
// host compares the release a PluginKit plugin carries in its table (`swift_release`, ABI 1.1) with its own, and
// refuses a mismatch at load with a message naming both. C plugins carry none and are not checked.

/// The Swift release of the compiler that built this code.
public enum SwiftRelease {
    /// "6.3" for Swift 6.3.x; "later than 6.9" or "earlier than 5.9" outside the releases this file knows.
    public static let current: String = {
        #if compiler(>=7.0)
        return "later than 6.9"
        #elseif compiler(>=6.9)
        return "6.9"
        #elseif compiler(>=6.8)
        return "6.8"
        #elseif compiler(>=6.7)
        return "6.7"
        #elseif compiler(>=6.6)
        return "6.6"
        #elseif compiler(>=6.5)
        return "6.5"
        #elseif compiler(>=6.4)
        return "6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #elseif compiler(>=6.0)
        return "6.0"
        #elseif compiler(>=5.10)
        return "5.10"
        #elseif compiler(>=5.9)
        return "5.9"
        #else
        return "earlier than 5.9"
        #endif
    }()
}
