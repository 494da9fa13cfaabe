// The `http-proxy` entry of the listener table: its config side (src/config/listeners/http-proxy.ts)
// and start() in ./start.ts.
import { type HttpProxyConfig, httpProxyConfigType } from '../../../config/listeners/http-proxy.ts';
import type { ListenerType } from '../../listener.ts';
import { httpProxyRuntime } from './start.ts';

export const httpProxyType: ListenerType<HttpProxyConfig> = { ...httpProxyConfigType, ...httpProxyRuntime };
