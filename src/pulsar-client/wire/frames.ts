/**
 * Pulsar frames (protocol spec, "Framing"):
 *
 *   simple:  [totalSize u32][commandSize u32][BaseCommand]
 *   payload: [totalSize u32][commandSize u32][BaseCommand]
 *            ([0x0e02][brokerEntryMetadataSize u32][BrokerEntryMetadata])?   (MESSAGE only)
 *            [0x0e01][CRC32C u32][metadataSize u32][MessageMetadata][payload]
 *
 * The checksum covers everything from metadataSize to the end of the frame. Every
 * size is checked against what is actually there before anything is read, so a
 * truncated or garbage frame becomes a PulsarProtocolError, never an out-of-range read.
 */
import { PulsarProtocolError } from '../errors.js';
import { BaseCommandCodec, COMMAND_FIELD, CommandType, MessageMetadataCodec, commandName } from './commands.js';
import type { BaseCommand, MessageMetadata } from './commands.js';
import { crc32c } from './crc32c.js';

export const MAGIC_CRC32C = 0x0e01;
export const MAGIC_BROKER_ENTRY_METADATA = 0x0e02;
/** Pulsar's default maxMessageSize (5 MiB) plus the frame padding Java clients allow for headers. */
export const DEFAULT_MAX_FRAME_SIZE = 5 * 1024 * 1024 + 10 * 1024;

/** One decoded frame. `payload` and `metadata` are present on payload frames (MESSAGE). */
export interface Frame {
  readonly command: BaseCommand;
  readonly metadata?: MessageMetadata;
  readonly payload?: Buffer;
  /** The payload frame carried a CRC32C that does not match its bytes. */
  readonly checksumMismatch?: boolean;
}

/** Encodes a command without payload. `body` is the object for the field its type names. */
export function encodeCommand(type: number, body: object): Buffer {
  const command = BaseCommandCodec.encode({ type, [fieldOf(type)]: body }).finish();
  const frame = Buffer.allocUnsafe(8 + command.length);
  frame.writeUInt32BE(4 + command.length, 0);
  frame.writeUInt32BE(command.length, 4);
  frame.set(command, 8);
  return frame;
}

/** Encodes a command followed by message metadata and payload, with the CRC32C checksum. */
export function encodePayloadCommand(type: number, body: object, metadata: object, payload: Uint8Array): Buffer {
  const command = BaseCommandCodec.encode({ type, [fieldOf(type)]: body }).finish();
  const meta = MessageMetadataCodec.encode(metadata).finish();
  const checksummedStart = 8 + command.length + 6;
  const total = checksummedStart + 4 + meta.length + payload.length;
  const frame = Buffer.allocUnsafe(total);
  frame.writeUInt32BE(total - 4, 0);
  frame.writeUInt32BE(command.length, 4);
  frame.set(command, 8);
  frame.writeUInt16BE(MAGIC_CRC32C, 8 + command.length);
  frame.writeUInt32BE(meta.length, checksummedStart);
  frame.set(meta, checksummedStart + 4);
  frame.set(payload, checksummedStart + 4 + meta.length);
  frame.writeUInt32BE(crc32c(frame.subarray(checksummedStart)) >>> 0, 8 + command.length + 2);
  return frame;
}

export function encodeFlow(consumerId: number, permits: number): Buffer {
  return encodeCommand(CommandType.FLOW, { consumerId, messagePermits: permits });
}

function fieldOf(type: number): string {
  const field = COMMAND_FIELD[type];
  if (field === undefined) throw new PulsarProtocolError(`txkit cannot encode ${commandName(type)}`);
  return field;
}

/**
 * Splits a byte stream into frames. Keeps at most one frame's worth of bytes; a frame
 * larger than `maxFrameSize` is refused before it is buffered.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  maxFrameSize: number;

  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes received but not yet a whole frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds bytes; returns the frames they complete. Throws PulsarProtocolError on bytes that cannot be Pulsar. */
  push(chunk: Buffer): Frame[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: Frame[] = [];
    // Bounded: each pass consumes one frame of at least 4 bytes, or returns.
    while (this.#buffered >= 4) {
      const head = this.#peek(4);
      const size = head.readUInt32BE(0);
      if (size < 4) throw new PulsarProtocolError(`frame size ${size} is smaller than its command size field`);
      if (size > this.maxFrameSize) {
        throw new PulsarProtocolError(`frame of ${size} bytes exceeds the ${this.maxFrameSize}-byte limit`);
      }
      if (this.#buffered < 4 + size) break;
      const frame = this.#take(4 + size);
      frames.push(decodeFrame(frame.subarray(4)));
    }
    return frames;
  }

  /** The first `n` buffered bytes (n <= buffered), merging chunks only when they are split. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) return first;
    const merged = Buffer.concat(this.#chunks);
    this.#chunks = [merged];
    return merged;
  }

  #take(n: number): Buffer {
    const merged = this.#peek(n);
    const out = merged.subarray(0, n);
    const rest = merged.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered -= n;
    return out;
  }
}

/** Decodes one frame body (everything after totalSize). */
export function decodeFrame(body: Buffer): Frame {
  const commandSize = body.readUInt32BE(0);
  if (commandSize === 0 || commandSize > body.length - 4) {
    throw new PulsarProtocolError(`command size ${commandSize} does not fit in a frame of ${body.length + 4} bytes`);
  }
  const command = decodeCommand(body.subarray(4, 4 + commandSize));
  let offset = 4 + commandSize;
  if (offset === body.length) return { command };

  // A payload follows: only MESSAGE (and SEND, which a client never receives) carry one.
  if (body.length - offset >= 2 && body.readUInt16BE(offset) === MAGIC_BROKER_ENTRY_METADATA) {
    const size = readSize(body, offset + 2, 'broker entry metadata');
    offset += 6 + size;
  }
  let checksum: number | undefined;
  if (body.length - offset >= 2 && body.readUInt16BE(offset) === MAGIC_CRC32C) {
    if (body.length - offset < 6) throw new PulsarProtocolError('payload frame ends inside its checksum');
    checksum = body.readUInt32BE(offset + 2);
    offset += 6;
  }
  const checksummed = body.subarray(offset);
  const metadataSize = readSize(body, offset, 'message metadata');
  const metadataBytes = body.subarray(offset + 4, offset + 4 + metadataSize);
  let metadata: MessageMetadata;
  try {
    metadata = MessageMetadataCodec.decode(metadataBytes) as unknown as MessageMetadata;
  } catch (err) {
    throw new PulsarProtocolError(`undecodable message metadata of ${commandName(command.type)}: ${describe(err)}`, { cause: err });
  }
  const payload = body.subarray(offset + 4 + metadataSize);
  const checksumMismatch = checksum !== undefined && crc32c(checksummed) >>> 0 !== checksum;
  return checksumMismatch ? { command, metadata, payload, checksumMismatch } : { command, metadata, payload };
}

function decodeCommand(bytes: Buffer): BaseCommand {
  let command: BaseCommand;
  try {
    command = BaseCommandCodec.decode(bytes) as unknown as BaseCommand;
  } catch (err) {
    throw new PulsarProtocolError(`undecodable command (${bytes.length} bytes): ${describe(err)}`, { cause: err });
  }
  const field = COMMAND_FIELD[command.type];
  // A known command type must carry its body (PING and PONG have none worth checking);
  // the body's own required fields were checked by decode.
  const bodyless = command.type === CommandType.PING || command.type === CommandType.PONG;
  if (field !== undefined && !bodyless && !Object.prototype.hasOwnProperty.call(command, field)) {
    throw new PulsarProtocolError(`${commandName(command.type)} arrived without its body`);
  }
  return command;
}

function readSize(body: Buffer, offset: number, what: string): number {
  if (body.length - offset < 4) throw new PulsarProtocolError(`payload frame ends before the ${what} size`);
  const size = body.readUInt32BE(offset);
  if (size > body.length - offset - 4) {
    throw new PulsarProtocolError(`${what} size ${size} runs past the end of its frame`);
  }
  return size;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
