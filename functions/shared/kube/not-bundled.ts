/**
 * Stand-ins the Lambda bundles use for parts of @kubernetes/client-node that mlpipe never reaches
 * (lib/constructs/lambda-bundle.ts swaps them in; the TypeScript sources and tests use the real modules):
 * - undici: client-node sends its typed API calls and watches through undici; mlpipe sends every request
 *   through node:http(s) (./transport), so KubeConfig's dispatcher code is dead weight (~740 KB);
 * - the legacy auth-provider plugins (azure, gcp, oidc) and SOCKS proxies, which ./config refuses up front
 *   (assertSupported) with a message that says what to use instead.
 * KubeConfig constructs one of each authenticator whatever the kubeconfig says, so constructing must work;
 * anything past that throws, naming what was reached.
 */
import { ConfigurationError } from '../errors';

class NotBundled extends Error {
  override readonly name = 'NotBundledError';
  constructor(what: string) {
    super(`${what} is not part of mlpipe's Lambda bundles (see functions/shared/kube/not-bundled.ts).`);
  }
}

interface AuthUser {
  name?: string;
  authProvider?: { name?: string };
}

/** client-node's auth-provider authenticators: recognise their provider, then refuse it. */
function unsupportedAuthProvider(provider: string) {
  return class {
    isAuthProvider(user: AuthUser | undefined): boolean {
      return user?.authProvider?.name === provider;
    }
    async applyAuthentication(user: AuthUser): Promise<void> {
      throw new ConfigurationError(`user ${user.name ?? '?'} uses the auth-provider "${provider}", which mlpipe does not support.`);
    }
  };
}

export const AzureAuth = unsupportedAuthProvider('azure');
export const GoogleCloudPlatformAuth = unsupportedAuthProvider('gcp');
export const OpenIDConnectAuth = unsupportedAuthProvider('oidc');

export class SocksProxyAgent {
  constructor() {
    throw new ConfigurationError('SOCKS proxies are not supported by mlpipe; use an HTTP(S) proxy.');
  }
}

export const SocksClient = {
  createConnection(): never {
    throw new ConfigurationError('SOCKS proxies are not supported by mlpipe; use an HTTP(S) proxy.');
  },
};

/** undici, as client-node imports it (config.js: Agent, ProxyAgent; watch.js and the generated client: fetch). */
export class Agent {
  constructor() {
    throw new NotBundled("client-node's undici transport (typed API clients, Watch)");
  }
}

export class ProxyAgent extends Agent {}

export function fetch(): never {
  throw new NotBundled("client-node's undici transport (typed API clients, Watch)");
}
