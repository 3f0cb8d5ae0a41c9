/**
 * The fingerprint of an endpoint token, part of the container contract: a server with AUTH_TOKEN_FILE
 * reports the tokens it accepts as `serving_auth_token_loaded{fingerprint="…"}` (the first 6 bytes of the
 * token's SHA-256, in hex: 48 bits, nothing a caller could use), and the rotation waits until every pod
 * lists the new one. One definition for both sides (examples/fashion-mnist/auth.ts, endpoint-token-rotation.ts).
 */
import { createHash } from 'node:crypto';

/** A token's SHA-256 (the example server compares tokens by it, in constant time). */
export const tokenDigest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** The fingerprint of a token's digest. */
export const digestFingerprint = (digest: Buffer): string => digest.subarray(0, 6).toString('hex');

/** The fingerprint of a token (surrounding whitespace is not part of it). */
export const tokenFingerprint = (token: string): string => digestFingerprint(tokenDigest(token.trim()));
