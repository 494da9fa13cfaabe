// The `metadata` entry of the listener table: its config side (src/config/listeners/metadata.ts)
// and start() in ./start.ts.
import { type MetadataConfig, metadataConfigType } from '../../../config/listeners/metadata.ts';
import type { ListenerType } from '../../listener.ts';
import { metadataRuntime } from './start.ts';

export const metadataType: ListenerType<MetadataConfig> = { ...metadataConfigType, ...metadataRuntime };
