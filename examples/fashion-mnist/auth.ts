/**
 * Bearer-token check of the example server (container contract: optional AUTH_TOKEN_FILE). The file holds
 * one accepted token per line: the pipeline writes the current token, and during a rotation the next one
 * too, so both work until every pod has read the new file. The file is a mounted Kubernetes Secret, which
 * the kubelet replaces in place when the Secret changes: it is stat'ed on each check and read again when
 * it changed, so a rotation needs no restart (and no timer). Tokens are compared as SHA-256 digests with
 * crypto.timingSafeEqual: equal-length inputs, so neither the token's content nor its length leaks through
 * timing. Tokens are never logged.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { digestFingerprint, tokenDigest as digest } from '../../functions/shared/token-fingerprint';

export { tokenFingerprint } from '../../functions/shared/token-fingerprint';

/** What a 401 carries (RFC 6750): the scheme, and `invalid_token` when a token was given but is wrong. */
export function wwwAuthenticate(tokenGiven: boolean): string {
  return tokenGiven ? 'Bearer realm="mlpipe", error="invalid_token"' : 'Bearer realm="mlpipe"';
}

export class TokenFile {
  private digests: Buffer[] = [];
  private seen = '';

  constructor(readonly path: string) {
    this.reload();
    if (this.digests.length === 0) throw new Error(`AUTH_TOKEN_FILE ${path} holds no token (one per line).`);
  }

  /** Reads the file again if it changed since the last read (size, mtime or inode: a Secret update swaps the file). */
  private reload(): void {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      // Gone for a moment (mid-swap), or never there: keep what was read; the constructor reports a missing file.
      if (this.seen === '') throw new Error(`AUTH_TOKEN_FILE ${this.path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    if (stamp === this.seen) return;
    const tokens = readFileSync(this.path, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
    // An empty file mid-write would lock every client out: keep the previous tokens until it has some.
    if (tokens.length === 0 && this.digests.length > 0) return;
    this.digests = tokens.map(digest);
    this.seen = stamp;
  }

  /** How many tokens are accepted now (a rotation: 2). */
  get count(): number {
    this.reload();
    return this.digests.length;
  }

  /** Short SHA-256 fingerprints of the accepted tokens, so a rotation can see that a pod has read the new file. */
  fingerprints(): string[] {
    this.reload();
    return this.digests.map(digestFingerprint);
  }

  /** Whether `authorization` is `Bearer <an accepted token>`; every accepted token is compared (no early exit). */
  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return false;
    this.reload();
    const given = digest(match[1]!);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, given) || ok;
    return ok;
  }
}

/** Prometheus lines about the accepted tokens (no token, only 48-bit fingerprints of their SHA-256). */
export function renderAuthMetrics(tokens: TokenFile): string {
  const lines = ['# HELP serving_auth_token_loaded Endpoint tokens this server accepts now, by SHA-256 fingerprint.', '# TYPE serving_auth_token_loaded gauge'];
  for (const f of tokens.fingerprints()) lines.push(`serving_auth_token_loaded{fingerprint="${f}"} 1`);
  return `${lines.join('\n')}\n`;
}
