import { demoClientSecret } from './demo-config.js';

export interface DemoPeersHandle {
  issuer: string;
  apiUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the bundled demo peers on loopback: an OIDC provider (panva's oidc-provider) with a
 * client for this service, and a small API that accepts its access tokens.
 */
export async function startDemoPeers(options: {
  publicUrl: string;
  preferredPort: number;
}): Promise<DemoPeersHandle> {
  void demoClientSecret;
  void options;
  throw new Error('demo peers are not wired yet');
}
