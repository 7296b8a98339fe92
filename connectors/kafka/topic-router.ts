import type { TableRef } from '../../src/core/change-event.ts';
import { TributaryError } from '../../src/errors.ts';
import type { KafkaTargetConfig } from './config.ts';

/** Characters Kafka allows in topic names; others are replaced with `_` (as Debezium does). */
const ILLEGAL = /[^a-zA-Z0-9._-]/g;

/**
 * Picks the topic of a table: an exact `topics` override, else the first matching `topic_routes` pattern, else
 * `<topic_prefix>.<schema>.<table>`. Results are cached per table.
 */
export class TopicRouter {
  private readonly cache = new Map<string, string>();
  private readonly routes: { re: RegExp; topic: string }[];

  constructor(private readonly config: Pick<KafkaTargetConfig, 'topic_prefix' | 'topics' | 'topic_routes'>) {
    this.routes = config.topic_routes.map((r, i) => {
      try {
        return { re: new RegExp(`^(?:${r.pattern})$`), topic: r.topic };
      } catch (err) {
        throw new TributaryError(
          'operator',
          `kafka target: topic_routes[${i}].pattern is not a valid regular expression`,
          {
            hint: `${(err as Error).message}`,
          },
        );
      }
    });
  }

  topicFor(table: TableRef): string {
    const id = `${table.schema}.${table.name}`;
    let topic = this.cache.get(id);
    if (topic === undefined) {
      topic = this.resolve(id, table);
      this.cache.set(id, topic);
    }
    return topic;
  }

  /** Logical decoding messages: `<topic_prefix>.message` (Debezium's topic for them). */
  messageTopic(): string {
    return `${this.config.topic_prefix}.message`;
  }

  private resolve(id: string, table: TableRef): string {
    const exact = this.config.topics[id];
    if (exact) return exact;
    for (const r of this.routes) {
      if (r.re.test(id)) return sanitize(id.replace(r.re, r.topic));
    }
    return sanitize(`${this.config.topic_prefix}.${table.schema}.${table.name}`);
  }
}

function sanitize(topic: string): string {
  const clean = topic.replace(ILLEGAL, '_');
  if (clean.length === 0 || clean.length > 249 || clean === '.' || clean === '..') {
    throw new TributaryError('operator', `kafka target: "${topic}" cannot be a Kafka topic name`, {
      hint: 'Map the table to a shorter name with `topics` or `topic_routes`.',
    });
  }
  return clean;
}
