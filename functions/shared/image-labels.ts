/**
 * The labels of a training image in ECR, read the way a registry client reads them: the image manifest
 * (BatchGetImage; for a multi-platform image its index, then one platform's manifest) names the image
 * config blob, fetched through GetDownloadUrlForLayer and checked against its digest; the labels are its
 * `config.Labels`. In local mode AWS_ENDPOINT_URL_ECR points the client at local/ecr.ts, which serves the
 * local images' labels from their Dockerfiles the same way.
 */
import { createHash } from 'node:crypto';
import { BatchGetImageCommand, ECRClient, GetDownloadUrlForLayerCommand, type ImageIdentifier } from '@aws-sdk/client-ecr';
import { InvalidInputError } from './errors';

/** ECR's registry host: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`. */
const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;
/** `[host[:port]/]repository[:tag][@digest]`: a host has a dot or a port, or is localhost (Docker's rule). */
const REFERENCE = /^(?:([^/]+)\/)?([^:@]+)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/;

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];
/** Image configs are a few KB; a bigger answer is not one. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const DOWNLOAD_TIMEOUT_MS = 10_000;

/** ECR or the config download failed for a reason other than "no such image" (denied, throttled, unreachable). */
export class ImageInspectionError extends Error {
  override readonly name = 'ImageInspectionError';
}

export interface ImageReference {
  /** The registry host, if the reference names one. */
  host?: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export function parseImageReference(image: string): ImageReference | undefined {
  const m = REFERENCE.exec(image);
  if (!m) return undefined;
  let [, host, repository] = m;
  if (host !== undefined && !/[.:]/.test(host) && host !== 'localhost') {
    repository = `${host}/${repository}`;
    host = undefined;
  }
  return { host, repository: repository!, tag: m[3], digest: m[4] };
}

/** Where an ECR image lives: registry (account) and region, when the host says. */
export interface EcrImage {
  registryId?: string;
  region?: string;
  repositoryName: string;
  imageId: ImageIdentifier;
}

/** The ECR image a reference names, if its host is an ECR registry. */
export function ecrImage(ref: ImageReference): EcrImage | undefined {
  const m = ref.host === undefined ? undefined : ECR_HOST.exec(ref.host);
  if (!m) return undefined;
  return { registryId: m[1], region: m[2], ...localImage(ref) };
}

/** The image in the default registry (the local ECR in local mode): repository and tag or digest only. */
export function localImage(ref: ImageReference): EcrImage {
  return { repositoryName: ref.repository, imageId: ref.digest ? { imageDigest: ref.digest } : { imageTag: ref.tag ?? 'latest' } };
}

const clients = new Map<string, ECRClient>();
function ecrClient(region: string | undefined): ECRClient {
  const key = region ?? '';
  let client = clients.get(key);
  if (!client) {
    // Bounded so that a slow ECR fails Prepare within its Lambda timeout, naming the call, not by timing out.
    client = new ECRClient({ ...(region ? { region } : {}), maxAttempts: 3, requestHandler: { connectionTimeout: 3_000, requestTimeout: 5_000 } });
    clients.set(key, client);
  }
  return client;
}

interface Manifest {
  mediaType?: string;
  config?: { digest?: string };
  manifests?: Array<{ digest?: string; mediaType?: string; platform?: { os?: string; architecture?: string } }>;
}

/** An ECR call; a missing repository is the run's input problem, anything else an ImageInspectionError. */
async function ecrCall<T>(image: EcrImage, what: string, call: (client: ECRClient) => Promise<T>): Promise<T> {
  try {
    return await call(ecrClient(image.region));
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'RepositoryNotFoundException') throw new InvalidInputError(`image: ${what}: ECR has no repository ${image.repositoryName}.`);
    throw new ImageInspectionError(`reading the labels of ${what} from ECR failed: ${name}: ${(err as Error).message}`);
  }
}

async function getManifest(image: EcrImage, imageId: ImageIdentifier, what: string): Promise<Manifest> {
  const out = await ecrCall(image, what, (ecr) =>
    ecr.send(new BatchGetImageCommand({ registryId: image.registryId, repositoryName: image.repositoryName, imageIds: [imageId], acceptedMediaTypes: MANIFEST_TYPES })),
  );
  const found = out.images?.[0]?.imageManifest;
  if (found === undefined) {
    const failure = out.failures?.[0];
    // The Job could never pull it: say so now rather than as ImagePullBackOff later.
    throw new InvalidInputError(`image: ${what} is not in ECR repository ${image.repositoryName} (${failure?.failureCode ?? 'no manifest'}: ${failure?.failureReason ?? 'BatchGetImage returned nothing'}).`);
  }
  return JSON.parse(found) as Manifest;
}

/** A multi-platform image's labels come from one platform's config: linux/amd64, else linux/arm64, else any real one. */
function pickPlatform(index: Manifest): string | undefined {
  const real = (index.manifests ?? []).filter((m) => m.digest && m.platform?.os !== 'unknown'); // skip build attestations
  const on = (arch: string) => real.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch);
  return (on('amd64') ?? on('arm64') ?? real[0])?.digest;
}

/** A presigned download (never logged: the URL carries a signature), capped and timed out. */
async function download(url: string, what: string): Promise<Buffer> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
  } catch (err) {
    throw new ImageInspectionError(`downloading ${what} failed: ${(err as Error).message}`);
  }
  if (!res.ok) throw new ImageInspectionError(`downloading ${what} answered HTTP ${res.status}.`);
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > MAX_CONFIG_BYTES) throw new ImageInspectionError(`${what} is ${length} bytes, more than an image config can be.`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > MAX_CONFIG_BYTES) throw new ImageInspectionError(`${what} is ${bytes.length} bytes, more than an image config can be.`);
  return bytes;
}

/** The labels of the image's config (empty when it has none). Throws InvalidInputError when ECR has no such image. */
export async function readImageLabels(image: EcrImage, what: string): Promise<Record<string, string>> {
  let manifest = await getManifest(image, image.imageId, what);
  if (manifest.manifests) {
    const digest = pickPlatform(manifest);
    if (!digest) throw new InvalidInputError(`image: ${what} is a multi-platform index with no image manifest in it.`);
    manifest = await getManifest(image, { imageDigest: digest }, what);
  }
  const configDigest = manifest.config?.digest;
  if (!configDigest || !/^sha256:[a-f0-9]{64}$/.test(configDigest)) {
    throw new InvalidInputError(`image: ${what} has a manifest without a sha256 config digest (media type ${manifest.mediaType ?? 'unknown'}).`);
  }
  const { downloadUrl } = await ecrCall(image, what, (ecr) =>
    ecr.send(new GetDownloadUrlForLayerCommand({ registryId: image.registryId, repositoryName: image.repositoryName, layerDigest: configDigest })),
  );
  if (!downloadUrl) throw new ImageInspectionError(`ECR GetDownloadUrlForLayer gave no URL for the config ${configDigest} of ${what}.`);
  const bytes = await download(downloadUrl, `the config ${configDigest} of ${what}`);
  const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (actual !== configDigest) throw new ImageInspectionError(`the config blob of ${what} has digest ${actual}, not the manifest's ${configDigest}.`);
  let config: { config?: { Labels?: Record<string, unknown> | null } };
  try {
    config = JSON.parse(bytes.toString('utf8')) as typeof config;
  } catch (err) {
    throw new ImageInspectionError(`the config blob of ${what} is not JSON: ${(err as Error).message}`);
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.config?.Labels ?? {})) if (typeof v === 'string') labels[k] = v;
  return labels;
}
