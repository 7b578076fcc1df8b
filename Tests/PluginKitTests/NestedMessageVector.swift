// A hand-encoded message three levels deep, shared by the scanner and rewriter tests.
//
// Built from the protobuf encoding spec (key = fieldNumber << 3 | wireType):
//
//     Outer {
//       1: string "orders"                      0A 06 6F 72 64 65 72 73
//       2: A {                                  12 1B
//         1: varint 150                           08 96 01
//         3: B {                                  1A 16
//           2: fixed32 0x01020304                   15 04 03 02 01
//           4: C {                                  22 0F
//             1: string "ns-a"                        0A 04 6E 73 2D 61
//             9: fixed64 0x8877665544332211           49 11 22 33 44 55 66 77 88
//           }
//         }
//       }
//       3: varint 1, 3: varint 2 (repeated)     18 01 18 02
//       1000: varint 1 (unknown field)          C0 3E 01
//       5: varint -1 as int64 (10 bytes)        28 FF FF FF FF FF FF FF FF FF 01
//     }

enum NestedMessageVector {
    static let levelC = "0A 04 6E 73 2D 61  49 11 22 33 44 55 66 77 88"
    static let levelBBeforeC = "15 04 03 02 01"
    static let levelABeforeB = "08 96 01"
    static let outerBeforeA = "0A 06 6F 72 64 65 72 73"
    static let outerAfterA = "18 01 18 02  C0 3E 01  28 FF FF FF FF FF FF FF FF FF 01"

    static let encoded = bytes(
        outerBeforeA + " 12 1B " + levelABeforeB + " 1A 16 " + levelBBeforeC + " 22 0F " + levelC + " " + outerAfterA
    )

    /// Offset of the "ns-a" payload: 8 (field 1) + 2 (A header) + 3 + 2 (B header) + 5 + 2 (C header) + 2.
    static let namespacePayloadOffset = 24
}
