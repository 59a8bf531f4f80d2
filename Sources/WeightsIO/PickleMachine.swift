/// A value on the stack of the restricted unpickler.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    case global(module: String, name: String)
    case storage(dtype: StoredDType, key: String)
    case tensor(StoredTensor)
    case mark

    var typeName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .global(let module, let name): "\(module).\(name)"
        case .storage: "storage"
        case .tensor: "tensor"
        case .mark: "mark"
        }
    }
}

/// A tuple and how deeply tuples nest inside it. Tuples are values, so their depth is known when they are built and
/// bounded there: a file of millions of nested tuples must not overflow the stack when it is torn down.
struct PickleTuple {
    static let maximumDepth = 256

    var items: [PickleValue]
    var depth: Int

    /// Lists and dicts count as depth 1: their items are released by `PickleMachine.releaseContainers`, not recursively.
    init?(_ items: [PickleValue]) {
        let inner = items.lazy.map { value -> Int in if case .tuple(let tuple) = value { tuple.depth } else { 0 } }.max() ?? 0
        guard inner < Self.maximumDepth else { return nil }
        self.items = items
        self.depth = inner + 1
    }
}

/// Lists and dicts are mutable and shared through the memo, so they are reference types (and may form cycles).
final class PickleList { var items: [PickleValue] = [] }
final class PickleDict { var items: [(key: PickleValue, value: PickleValue)] = [] }

/// An unpickler for exactly the opcodes that `torch.save` uses for state dicts.
///
/// It never imports or calls anything: the only callables it knows are a fixed allow-list (an ordered dict and
/// torch's tensor and parameter rebuilders), evaluated by odam's own code. Any other global, and object-building
/// opcodes such as NEWOBJ or INST, are rejected with an error naming the offending global and byte offset.
struct PickleMachine {
    let file: String
    let bytes: ArraySlice<UInt8>
    /// Looks up a persistent storage by key; returns its raw bytes.
    let loadStorage: (String) throws -> [UInt8]

    private var position: Int
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var storages: [String: [UInt8]] = [:]
    /// Every list and dict made, so that `releaseContainers` can empty them one by one.
    private var containers: [AnyObject] = []

    init(bytes: ArraySlice<UInt8>, file: String, loadStorage: @escaping (String) throws -> [UInt8]) {
        self.bytes = bytes
        self.file = file
        self.loadStorage = loadStorage
        self.position = bytes.startIndex
    }

    private func error(_ reason: String) -> WeightsError {
        WeightsError(file: file, offset: position - bytes.startIndex, "pickle: \(reason)")
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.endIndex - position else { throw error("data ends inside an opcode (truncated?)") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private mutating func unsignedInteger(_ count: Int) throws -> Int {
        try take(count).reversed().reduce(0) { $0 << 8 | Int($1) }
    }

    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw error("unterminated line") }
        let text = String(decoding: bytes[position..<end], as: UTF8.self)
        position = end + 1
        return text
    }

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast() else { throw error("stack underflow") }
        return value
    }

    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw error("no mark on the stack") }
        // Opcodes after MARK may pop below it (found by fuzzing): the mark then points past the stack's end.
        guard mark <= stack.count else { throw error("the stack shrank below its mark") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    mutating func run() throws -> PickleValue {
        while true {
            let opcode = try take(1).first!
            switch opcode {
            case 0x80: _ = try take(1)  // PROTO
            case 0x95: _ = try take(8)  // FRAME
            case 0x2E: return try pop()  // STOP
            case 0x7D: stack.append(.dict(newDict()))  // EMPTY_DICT
            case 0x5D: stack.append(.list(newList()))  // EMPTY_LIST
            case 0x29: stack.append(try tuple([]))  // EMPTY_TUPLE
            case 0x28: marks.append(stack.count)  // MARK
            case 0x4E: stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case 0x4B: stack.append(.int(try unsignedInteger(1)))  // BININT1
            case 0x4D: stack.append(.int(try unsignedInteger(2)))  // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try unsignedInteger(4)))))  // BININT
            case 0x8A:  // LONG1
                let length = try unsignedInteger(1)
                guard length <= 8 else { throw error("integer of \(length) bytes is too large") }
                let raw = try take(length)
                var value = raw.reversed().reduce(0) { $0 << 8 | Int($1) }
                if length > 0, length < 8, raw.last! & 0x80 != 0 { value -= 1 << (8 * length) }
                stack.append(.int(value))
            case 0x47:  // BINFLOAT, big-endian
                let raw = try take(8)
                stack.append(.float(Double(bitPattern: raw.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x58: stack.append(.string(try text(try unsignedInteger(4))))  // BINUNICODE
            case 0x8C: stack.append(.string(try text(try unsignedInteger(1))))  // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(try text(try unsignedInteger(8))))  // BINUNICODE8
            case 0x55: stack.append(.string(try text(try unsignedInteger(1))))  // SHORT_BINSTRING
            case 0x54: stack.append(.string(try text(try unsignedInteger(4))))  // BINSTRING
            case 0x43: stack.append(.bytes(Array(try take(try unsignedInteger(1)))))  // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try take(try unsignedInteger(4)))))  // BINBYTES
            case 0x71: memo[try unsignedInteger(1)] = stack.last  // BINPUT
            case 0x72: memo[try unsignedInteger(4)] = stack.last  // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last  // MEMOIZE
            case 0x68, 0x6A:  // BINGET, LONG_BINGET
                let key = try unsignedInteger(opcode == 0x68 ? 1 : 4)
                guard let value = memo[key] else { throw error("memo key \(key) was never stored") }
                stack.append(value)
            case 0x74: stack.append(try tuple(try popToMark()))  // TUPLE
            case 0x85: stack.append(try tuple([try pop()]))
            case 0x86:
                let b = try pop(), a = try pop()
                stack.append(try tuple([a, b]))
            case 0x87:
                let c = try pop(), b = try pop(), a = try pop()
                stack.append(try tuple([a, b, c]))
            case 0x61:  // APPEND
                let value = try pop()
                guard case .list(let list) = stack.last else { throw error("APPEND to a non-list") }
                list.items.append(value)
            case 0x65:  // APPENDS
                let values = try popToMark()
                guard case .list(let list) = stack.last else { throw error("APPENDS to a non-list") }
                list.items += values
            case 0x73:  // SETITEM
                let value = try pop(), key = try pop()
                guard case .dict(let dict) = stack.last else { throw error("SETITEM on a non-dict") }
                dict.items.append((key, value))
            case 0x75:  // SETITEMS
                let values = try popToMark()
                guard values.count % 2 == 0, case .dict(let dict) = stack.last else { throw error("SETITEMS on a non-dict") }
                for i in stride(from: 0, to: values.count, by: 2) { dict.items.append((values[i], values[i + 1])) }
            case 0x63:  // GLOBAL
                let module = try line(), name = try line()
                stack.append(try allowedGlobal(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw error("STACK_GLOBAL needs two strings")
                }
                stack.append(try allowedGlobal(module: module, name: name))
            case 0x51:  // BINPERSID
                stack.append(try persistentLoad(try pop()))
            case 0x52:  // REDUCE
                let arguments = try pop(), callable = try pop()
                guard case .tuple(let args) = arguments else { throw error("REDUCE arguments are not a tuple") }
                stack.append(try call(callable, args.items))
            case 0x62:  // BUILD: state for an object; dict attributes (_metadata) and tensor state carry no weights.
                _ = try pop()
                guard let target = stack.last else { throw error("BUILD with an empty stack") }
                switch target {
                case .dict, .tensor: break
                default: throw error("BUILD on a \(target.typeName), which a state dict does not contain")
                }
            default:
                throw error(
                    "opcode 0x\(String(opcode, radix: 16, uppercase: true)) is not allowed in a weights file (only plain data and tensors are)"
                )
            }
        }
    }

    private func tuple(_ items: [PickleValue]) throws -> PickleValue {
        guard let tuple = PickleTuple(items) else { throw error("tuples nested deeper than \(PickleTuple.maximumDepth)") }
        return .tuple(tuple)
    }

    private mutating func newList() -> PickleList {
        let list = PickleList()
        containers.append(list)
        return list
    }

    private mutating func newDict() -> PickleDict {
        let dict = PickleDict()
        containers.append(dict)
        return dict
    }

    /// Empties every list and dict this machine made, iteratively. A hostile file can nest containers millions deep
    /// or make a dict contain itself through the memo; releasing such a graph the usual way would recurse once per
    /// level (a stack overflow) or never free it (a cycle). Call it when the values are no longer needed.
    mutating func releaseContainers() {
        stack.removeAll()
        memo.removeAll()
        for container in containers {
            if let list = container as? PickleList { list.items.removeAll() }
            if let dict = container as? PickleDict { dict.items.removeAll() }
        }
        containers.removeAll()
    }

    private mutating func text(_ length: Int) throws -> String {
        String(decoding: try take(length), as: UTF8.self)
    }

    private static let storageTypes: [String: StoredDType] = [
        "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16, "DoubleStorage": .float64,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .bool,
    ]

    private func allowedGlobal(module: String, name: String) throws -> PickleValue {
        switch (module, name) {
        case ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
            ("torch._utils", "_rebuild_parameter_with_state"), ("builtins", "dict"):
            return .global(module: module, name: name)
        case ("torch", _) where Self.storageTypes[name] != nil:
            return .global(module: module, name: name)
        default:
            throw error("refusing global \(module).\(name): odam loads plain state dicts and never executes code from a file")
        }
    }

    private mutating func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard case .tuple(let tuple) = id, case let parts = tuple.items, parts.count >= 3, case .string("storage") = parts[0],
            case .global(_, let typeName) = parts[1], case .string(let key) = parts[2]
        else { throw error("persistent id is not a torch storage reference") }
        guard let dtype = Self.storageTypes[typeName] else { throw error("unknown storage type \(typeName)") }
        if storages[key] == nil { storages[key] = try loadStorage(key) }
        return .storage(dtype: dtype, key: key)
    }

    private mutating func call(_ callable: PickleValue, _ args: [PickleValue]) throws -> PickleValue {
        guard case .global(let module, let name) = callable else { throw error("REDUCE on a \(callable.typeName)") }
        switch name {
        case "OrderedDict", "dict":
            guard args.isEmpty else { throw error("\(module).\(name) with arguments is not supported") }
            return .dict(newDict())
        case "_rebuild_tensor_v2":
            guard args.count >= 4, case .storage(let dtype, let key) = args[0], case .int(let offset) = args[1],
                case .tuple(let sizeTuple) = args[2], case .tuple(let strideTuple) = args[3]
            else { throw error("malformed _rebuild_tensor_v2 arguments") }
            let shape = try sizeTuple.items.map { value -> Int in
                guard case .int(let v) = value, v >= 0 else { throw error("tensor size is not a non-negative int") }
                return v
            }
            let strides = try strideTuple.items.map { value -> Int in
                guard case .int(let v) = value, v >= 0 else { throw error("tensor stride is not a non-negative int") }
                return v
            }
            guard shape.count == strides.count else { throw error("tensor size and stride ranks differ") }
            let storage = storages[key]!
            let outOfStorage = error("tensor of shape \(shape) at offset \(offset) exceeds its storage '\(key)' of \(storage.count) bytes")
            // Every number here comes from the file: checked arithmetic, so a huge size, stride or offset is an error.
            var extent = shape.contains(0) ? 0 : 1
            if extent == 1 {
                for (size, stride) in zip(shape, strides) {
                    guard let grown = CheckedSize.multiplyAdd(size - 1, stride, extent) else { throw outOfStorage }
                    extent = grown
                }
            }
            guard offset >= 0, let start = CheckedSize.multiplyAdd(offset, dtype.byteSize),
                let last = CheckedSize.add(offset, extent), let end = CheckedSize.multiplyAdd(last, dtype.byteSize),
                end <= storage.count
            else { throw outOfStorage }
            return .tensor(StoredTensor(dtype: dtype, shape: shape, strides: strides, bytes: Array(storage[start..<max(start, end)])))
        case "_rebuild_parameter", "_rebuild_parameter_with_state":
            guard case .tensor = args.first else { throw error("_rebuild_parameter without a tensor") }
            return args[0]
        default:
            throw error("refusing to call \(module).\(name)")
        }
    }
}
