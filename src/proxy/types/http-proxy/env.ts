// What the program's environment gets when an http-proxy listener says `env:` (the pipeline
// adds it to the child's env once the listener is bound): the proxy variables in both cases
// (curl reads only lowercase http_proxy, Go and Python either), loopback exempted.
import { formatHostPort } from '../../../lib/address.ts';
import type { HostPort } from '../../listener.ts';
import type { HttpProxyConfig } from './start.ts';

export const LOOPBACK_NO_PROXY = ['localhost', '127.0.0.1', '::1'];

export function httpProxyEnv(config: Pick<HttpProxyConfig, 'env'>, address: HostPort): Record<string, string> {
  if (config.env === false) return {};
  const url = `http://${formatHostPort(address)}`;
  const extra = config.env === true ? [] : config.env.noProxy;
  const noProxy = [...new Set([...LOOPBACK_NO_PROXY, ...extra])].join(',');
  const out: Record<string, string> = { HTTP_PROXY: url, http_proxy: url, NO_PROXY: noProxy, no_proxy: noProxy };
  if (config.env !== true && config.env.httpsProxy) Object.assign(out, { HTTPS_PROXY: url, https_proxy: url });
  return out;
}
