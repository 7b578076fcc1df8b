// Collects `FileDescriptorProto`s, one or many at a time, and tells which imports are still missing.
//
// Owns the closure over imports and the dependency order of a descriptor set: the reflection pull adds files as
// the server sends them and asks for what `missingImports` lists; the file loader checks a saved set with it. A
// file name seen twice keeps its first copy. It does no I/O.

import SwiftProtobuf

struct DescriptorSetAssembler {
    private var filesByName: [String: Google_Protobuf_FileDescriptorProto] = [:]
    /// File names in the order they arrived.
    private var arrivalOrder: [String] = []

    /// How many distinct files were added.
    var fileCount: Int { arrivalOrder.count }

    /// Whether a file of that name was added.
    func contains(_ name: String) -> Bool {
        filesByName[name] != nil
    }

    /// Decodes one serialized `FileDescriptorProto` and adds it.
    ///
    /// - Throws: `TemporalSchemaError.notADescriptorSet` naming `source` when the bytes do not decode.
    mutating func add(serialized bytes: [UInt8], source: String) throws(TemporalSchemaError) {
        let file: Google_Protobuf_FileDescriptorProto
        do {
            file = try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes, partial: true)
        } catch {
            throw .notADescriptorSet(source: source, reason: "a file descriptor does not decode: \(error)")
        }
        add(file)
    }

    /// Adds a decoded file, unless one of the same name is already there.
    mutating func add(_ file: Google_Protobuf_FileDescriptorProto) {
        guard filesByName[file.name] == nil else { return }
        filesByName[file.name] = file
        arrivalOrder.append(file.name)
    }

    /// Every import of an added file that was not added itself, once each, in the order they are first named.
    var missingImports: [TemporalSchemaError.MissingImport] {
        var missing: [TemporalSchemaError.MissingImport] = []
        var named: Set<String> = []
        for name in arrivalOrder {
            for dependency in filesByName[name]!.dependency
            where filesByName[dependency] == nil && named.insert(dependency).inserted {
                missing.append(.init(file: name, dependency: dependency))
            }
        }
        return missing
    }

    /// The files with every file after the files it imports; otherwise in arrival order. Imports that are missing
    /// are left out.
    var filesInDependencyOrder: [Google_Protobuf_FileDescriptorProto] {
        var ordered: [Google_Protobuf_FileDescriptorProto] = []
        // An import cycle is invalid protobuf; `entered` keeps one from looping forever.
        var entered: Set<String> = []
        // Depth first with a stack of its own, not recursion: a server's chain of imports can be as long as it likes.
        var path: [(file: Google_Protobuf_FileDescriptorProto, nextImport: Int)] = []
        for name in arrivalOrder where entered.insert(name).inserted {
            path.append((filesByName[name]!, 0))
            while let (file, nextImport) = path.last {
                guard nextImport < file.dependency.count else {
                    ordered.append(file)
                    path.removeLast()
                    continue
                }
                path[path.count - 1].nextImport += 1
                let dependency = file.dependency[nextImport]
                if let imported = filesByName[dependency], entered.insert(dependency).inserted {
                    path.append((imported, 0))
                }
            }
        }
        return ordered
    }

    /// The serialized `FileDescriptorSet` of every file, in dependency order.
    ///
    /// - Throws: `TemporalSchemaError.notADescriptorSet` naming `source` when the set exceeds protobuf's 2 GiB.
    func serializedDescriptorSet(source: String) throws(TemporalSchemaError) -> [UInt8] {
        var set = Google_Protobuf_FileDescriptorSet()
        set.file = filesInDependencyOrder
        do {
            // Partial: a descriptor that arrived without a proto2 required field is passed on as it came.
            return try set.serializedBytes(partial: true)
        } catch {
            throw .notADescriptorSet(source: source, reason: "the assembled set cannot be serialized: \(error)")
        }
    }
}
