/**
 * IDX files (the format MNIST and Fashion-MNIST ship in): read and write, unsigned-byte data only.
 * Pure and dependency-free so both the EvaluateModel handler and the example training/serving images
 * can import it. Layout: two zero bytes, a type byte (0x08 = unsigned byte), a dimension count, one
 * big-endian uint32 per dimension, then the data in row-major order.
 * Images are magic 0x00000803 (3 dims: n, rows, cols); labels are 0x00000801 (1 dim: n).
 */

/** The only IDX data type supported: unsigned byte. */
export const IDX_UBYTE = 0x08;

/** An IDX file is malformed: bad magic, unsupported type, or a size that does not match its header. */
export class IdxFormatError extends Error {
  override readonly name = 'IdxFormatError';
}

export interface IdxArray {
  /** Sizes of each dimension, e.g. [10000, 28, 28] for images or [10000] for labels. */
  dims: number[];
  /** The values, row-major. A view onto the input bytes, not a copy. */
  data: Uint8Array;
}

/** Size in bytes of an IDX header with `ndims` dimensions. */
export function idxHeaderSize(ndims: number): number {
  return 4 + 4 * ndims;
}

/** Total byte size of an unsigned-byte IDX file with these dimensions (used to check staged files). */
export function idxFileSize(dims: readonly number[]): number {
  return idxHeaderSize(dims.length) + dims.reduce((a, b) => a * b, 1);
}

/**
 * Parses an unsigned-byte IDX file. `data` shares memory with `bytes` (no copy: the t10k images are 7.8 MB).
 * Throws IdxFormatError naming what is wrong.
 */
export function decodeIdx(bytes: Uint8Array, what = 'IDX file'): IdxArray {
  if (bytes.byteLength < 4) {
    throw new IdxFormatError(`${what}: too short for an IDX header (${bytes.byteLength} bytes).`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new IdxFormatError(
      `${what}: bad magic number 0x${hex(bytes, 0, 4)} (an IDX file starts with two zero bytes; is it gzipped?).`,
    );
  }
  const type = bytes[2]!;
  if (type !== IDX_UBYTE) {
    throw new IdxFormatError(
      `${what}: unsupported IDX data type 0x${type.toString(16).padStart(2, '0')} (only 0x08, unsigned byte, is supported).`,
    );
  }
  const ndims = bytes[3]!;
  if (ndims === 0) throw new IdxFormatError(`${what}: IDX header declares 0 dimensions.`);
  const headerSize = idxHeaderSize(ndims);
  if (bytes.byteLength < headerSize) {
    throw new IdxFormatError(`${what}: truncated header: ${ndims} dimensions need ${headerSize} bytes, got ${bytes.byteLength}.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const dataSize = bytes.byteLength - headerSize;
  if (dataSize !== count) {
    throw new IdxFormatError(
      `${what}: size mismatch: header says ${dims.join('x')} = ${count} bytes of data, file has ${dataSize}.`,
    );
  }
  return { dims, data: bytes.subarray(headerSize) };
}

/** Builds an unsigned-byte IDX file. Throws IdxFormatError if `data` does not have the size `dims` say. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  if (dims.length === 0 || dims.length > 255) {
    throw new IdxFormatError(`encodeIdx: an IDX file needs 1 to 255 dimensions, got ${dims.length}.`);
  }
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new IdxFormatError(`encodeIdx: dimension ${d} is not an unsigned 32-bit integer.`);
    }
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.byteLength !== count) {
    throw new IdxFormatError(`encodeIdx: dims ${dims.join('x')} need ${count} bytes of data, got ${data.byteLength}.`);
  }
  const headerSize = idxHeaderSize(dims.length);
  const out = new Uint8Array(headerSize + count);
  const view = new DataView(out.buffer);
  out[2] = IDX_UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, headerSize);
  return out;
}

function hex(bytes: Uint8Array, start: number, end: number): string {
  return Array.from(bytes.subarray(start, end), (b) => b.toString(16).padStart(2, '0')).join('');
}
