/** IDX reader/writer: the format the staged dataset, the trainer and EvaluateModel share. */
import { decodeIdx, encodeIdx, idxFileSize, IdxFormatError } from '../../examples/fashion-mnist/idx';

describe('IDX encode/decode', () => {
  it('round-trips a 3-dimensional image file with a big-endian header', () => {
    // Prepare
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 37) % 256);

    // Act
    const bytes = encodeIdx([2, 3, 4], data);
    const decoded = decodeIdx(bytes);

    // Assess
    expect(Array.from(bytes.subarray(0, 16))).toEqual([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
    expect(bytes.byteLength).toBe(idxFileSize([2, 3, 4]));
    expect(decoded.dims).toEqual([2, 3, 4]);
    expect(Array.from(decoded.data)).toEqual(Array.from(data));
  });

  it('decodes without copying: the data is a view onto the input', () => {
    const bytes = encodeIdx([3], Uint8Array.of(7, 8, 9));
    const decoded = decodeIdx(bytes);
    expect(decoded.data.buffer).toBe(bytes.buffer);
    bytes[8] = 42;
    expect(decoded.data[0]).toBe(42);
  });

  it('reads large dimensions as unsigned 32-bit', () => {
    const header = encodeIdx([1], Uint8Array.of(5));
    const big = new Uint8Array(8);
    big.set(header.subarray(0, 4));
    new DataView(big.buffer).setUint32(4, 0x80000000, false);
    expect(() => decodeIdx(big)).toThrow(/2147483648 bytes of data, file has 0/);
  });

  it.each([
    ['gzipped file (bad magic)', Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0), /bad magic number 0x1f8b0800/],
    ['unsupported type (int32)', Uint8Array.of(0, 0, 0x0c, 1, 0, 0, 0, 0), /unsupported IDX data type 0x0c/],
    ['too short', Uint8Array.of(0, 0), /too short/],
    ['truncated header', Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 1), /truncated header: 3 dimensions need 16 bytes/],
    ['zero dimensions', Uint8Array.of(0, 0, 8, 0), /0 dimensions/],
    ['data shorter than the header says', Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 3, 1, 2), /header says 3 = 3 bytes of data, file has 2/],
  ])('rejects a %s with a clear error', (_, bytes, message) => {
    expect(() => decodeIdx(bytes, 'labels')).toThrow(IdxFormatError);
    expect(() => decodeIdx(bytes, 'labels')).toThrow(message);
    expect(() => decodeIdx(bytes, 'labels')).toThrow(/^labels: /);
  });

  it('refuses to encode data whose size does not match the dimensions', () => {
    expect(() => encodeIdx([2, 2], Uint8Array.of(1, 2, 3))).toThrow(/dims 2x2 need 4 bytes of data, got 3/);
    expect(() => encodeIdx([], new Uint8Array())).toThrow(/1 to 255 dimensions/);
    expect(() => encodeIdx([1.5], new Uint8Array(1))).toThrow(/not an unsigned 32-bit integer/);
  });
});
