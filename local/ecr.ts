/**
 * Local ECR for the local mode and the tests: the two calls Prepare makes to read a training image's labels
 * (functions/shared/image-labels.ts), over ECR's JSON protocol as @aws-sdk/client-ecr sends it, on
 * 127.0.0.1 — BatchGetImage (an OCI image manifest, or an index for a multi-platform image) and
 * GetDownloadUrlForLayer (a URL of this server serving the image config blob). Local images are built from nothing but their Dockerfile's final-stage
 * LABELs, so the labels Prepare reads locally are the ones `docker build` would put in the image.
 * Clients find it through AWS_ENDPOINT_URL_ECR.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { parseImageReference } from '../functions/shared/image-labels';
import { listenOnLoopback, readBody } from './http';

export interface LocalEcr {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  stop(): Promise<void>;
}

/** A local image: its labels, or the Dockerfile they are read from. */
export type LocalEcrImage = { labels: Record<string, string>; multiPlatform?: boolean } | { dockerfile: string };

const TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921.';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** What local "pushes" are recorded as: the account of the local run. */
const REGISTRY_ID = '000000000000';

class DockerfileError extends Error {
  override readonly name = 'DockerfileError';
}

/**
 * Splits one shell-like word list as Dockerfile instructions do: single quotes literal, double quotes
 * with `\` escapes, unquoted `\` escapes, words split on blanks. Variables (`$`) are not expanded: the
 * local catalog refuses them rather than reading a different value than `docker build` would.
 */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new DockerfileError('unterminated single quote');
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '$') throw new DockerfileError('variables ($) are not supported in local LABEL values');
        if (text[i] === '\\' && /["\\$]/.test(text[i + 1] ?? '')) i++;
        word += text[i];
      }
      if (i >= text.length) throw new DockerfileError('unterminated double quote');
    } else if (c === '$') {
      throw new DockerfileError('variables ($) are not supported in local LABEL values');
    } else {
      word = (word ?? '') + (c === '\\' && i + 1 < text.length ? text[++i]! : c);
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The labels of a Dockerfile's final stage (`LABEL k=v ...`, continuation lines joined; FROM starts a stage). */
export function dockerfileLabels(text: string): Record<string, string> {
  // Comment lines are dropped before continuation lines are joined, as the Dockerfile parser does.
  const lines = text.split(/\r?\n/).filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\[ \t]*\n/g, '').split('\n');
  let labels: Record<string, string> = {};
  for (const line of lines) {
    const m = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const instruction = m[1]!.toUpperCase();
    if (instruction === 'FROM') labels = {};
    if (instruction !== 'LABEL') continue;
    for (const word of shellWords(m[2]!)) {
      const eq = word.indexOf('=');
      if (eq <= 0) throw new DockerfileError(`LABEL ${word.slice(0, 40)}: expected key=value`);
      labels[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return labels;
}

/** A manifest or index the registry holds; `tag` on the one a tag points at. */
interface StoredManifest {
  digest: string;
  text: string;
  mediaType: string;
  tag?: string;
}

interface Repository {
  manifests: StoredManifest[];
  blobs: Map<string, Buffer>;
}

const sha256 = (data: string | Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function labelsOf(reference: string, image: LocalEcrImage): Record<string, string> {
  if ('labels' in image) return image.labels;
  try {
    return dockerfileLabels(readFileSync(image.dockerfile, 'utf8'));
  } catch (err) {
    throw new Error(`local ECR: cannot read the labels of ${reference} from ${image.dockerfile}: ${(err as Error).message}`);
  }
}

/** An OCI image with no layers (just the config holding the labels); its manifest, stored. */
function addImage(repo: Repository, labels: Record<string, string>, platform: { os: string; architecture: string }, tag?: string): StoredManifest {
  const config = Buffer.from(JSON.stringify({ ...platform, config: { Labels: labels }, rootfs: { type: 'layers', diff_ids: [] } }));
  const configDigest = sha256(config);
  repo.blobs.set(configDigest, config);
  const text = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length }, layers: [] });
  const manifest: StoredManifest = { digest: sha256(text), text, mediaType: OCI_MANIFEST, tag };
  repo.manifests.push(manifest);
  return manifest;
}

/**
 * Stores a local image under `<repository>:<tag>`. `multiPlatform` stores it as `docker buildx` pushes one:
 * an OCI index of a build attestation (platform unknown/unknown, no labels), linux/arm64 and linux/amd64.
 */
function storeImage(repos: Map<string, Repository>, reference: string, image: LocalEcrImage): void {
  const ref = parseImageReference(reference);
  if (!ref || ref.host !== undefined || ref.digest !== undefined) {
    throw new Error(`local ECR: "${reference}" must be <repository>:<tag>, without a registry host or digest`);
  }
  const labels = labelsOf(reference, image);
  const tag = ref.tag ?? 'latest';
  let repo = repos.get(ref.repository);
  if (!repo) repos.set(ref.repository, (repo = { manifests: [], blobs: new Map() }));
  if (!('multiPlatform' in image && image.multiPlatform)) {
    addImage(repo, labels, { os: 'linux', architecture: 'amd64' }, tag);
    return;
  }
  const platforms = [{ os: 'unknown', architecture: 'unknown' }, { os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'amd64' }];
  const children = platforms.map((p) => ({ platform: p, manifest: addImage(repo, p.os === 'unknown' ? {} : labels, p) }));
  const text = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map(({ platform, manifest }) => ({ mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.text.length, platform })),
  });
  repo.manifests.push({ digest: sha256(text), text, mediaType: OCI_INDEX, tag });
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers);
  res.end(JSON.stringify(errorType ? { __type: errorType, message: String(body) } : body));
}

/** Starts the local ECR with these images (`<repository>:<tag>` → labels or Dockerfile). */
export async function startLocalEcr(opts: { images: Record<string, LocalEcrImage>; port?: number }): Promise<LocalEcr> {
  const repos = new Map<string, Repository>();
  for (const [reference, image] of Object.entries(opts.images)) storeImage(repos, reference, image);
  let endpoint = '';

  const repositoryNotFound = (res: ServerResponse, name: string) =>
    send(res, 400, `The repository with name '${name}' does not exist in the registry with id '${REGISTRY_ID}'`, 'RepositoryNotFoundException');

  const batchGetImage = (req: Record<string, unknown>, res: ServerResponse) => {
    const name = String(req.repositoryName ?? '');
    const repo = repos.get(name);
    if (!repo) return repositoryNotFound(res, name);
    const accepted = Array.isArray(req.acceptedMediaTypes) ? (req.acceptedMediaTypes as unknown[]) : [OCI_MANIFEST];
    const found: unknown[] = [];
    const failures: unknown[] = [];
    for (const id of Array.isArray(req.imageIds) ? (req.imageIds as Array<{ imageTag?: string; imageDigest?: string }>) : []) {
      const manifest = repo.manifests.find((m) => (id.imageDigest ? m.digest === id.imageDigest : m.tag !== undefined && m.tag === id.imageTag));
      if (!manifest || (id.imageTag !== undefined && id.imageDigest !== undefined && manifest.tag !== id.imageTag)) {
        failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
      } else if (!accepted.includes(manifest.mediaType)) {
        failures.push({ imageId: id, failureCode: 'UnsupportedImageType', failureReason: `The image is ${manifest.mediaType}` });
      } else {
        const imageId = manifest.tag === undefined ? { imageDigest: manifest.digest } : { imageDigest: manifest.digest, imageTag: manifest.tag };
        found.push({ registryId: REGISTRY_ID, repositoryName: name, imageId, imageManifest: manifest.text, imageManifestMediaType: manifest.mediaType });
      }
    }
    send(res, 200, { images: found, failures });
  };

  const getDownloadUrlForLayer = (req: Record<string, unknown>, res: ServerResponse) => {
    const name = String(req.repositoryName ?? '');
    const repo = repos.get(name);
    if (!repo) return repositoryNotFound(res, name);
    const digest = String(req.layerDigest ?? '');
    if (!repo.blobs.has(digest)) return send(res, 400, `The specified layer '${digest}' does not exist in repository '${name}'`, 'LayersNotFoundException');
    send(res, 200, { downloadUrl: `${endpoint}/v2/${name}/blobs/${digest}`, layerDigest: digest });
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && req.url?.startsWith('/v2/')) {
        const m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url);
        const blob = m ? repos.get(m[1]!)?.blobs.get(m[2]!) : undefined;
        if (!blob) return send(res, 404, 'blob unknown', 'BlobUnknown');
        res.writeHead(200, { 'content-type': OCI_CONFIG, 'content-length': String(blob.length) });
        return res.end(blob);
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX)) return send(res, 400, 'Expected an ECR JSON request (POST with X-Amz-Target)', 'UnknownOperationException');
      const body = await readBody(req);
      if (body === undefined) return send(res, 413, 'Request body too large', 'ValidationException');
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return send(res, 400, 'The request body is not JSON', 'SerializationException');
      }
      const operation = target.slice(TARGET_PREFIX.length);
      if (operation === 'BatchGetImage') return batchGetImage(request, res);
      if (operation === 'GetDownloadUrlForLayer') return getDownloadUrlForLayer(request, res);
      send(res, 400, `The local ECR does not implement ${operation}`, 'UnknownOperationException');
    })().catch((err: Error) => {
      if (!res.headersSent) send(res, 500, err.message, 'ServerException');
    });
  });
  const listener = await listenOnLoopback(server, opts.port);
  endpoint = listener.endpoint;
  return { endpoint, stop: () => listener.stop() };
}
