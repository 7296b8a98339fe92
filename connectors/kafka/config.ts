import { z } from 'zod';

export const kafkaTargetConfig = z.strictObject({
  type: z.literal('kafka'),
  brokers: z.array(z.string()).min(1).describe('Bootstrap brokers, host:port.'),
  topic_prefix: z.string().describe('Topic prefix; topics are <topic_prefix>.<schema>.<table>.'),
});
export type KafkaTargetConfig = z.infer<typeof kafkaTargetConfig>;
