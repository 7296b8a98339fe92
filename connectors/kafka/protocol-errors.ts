/**
 * Kafka's error codes (org.apache.kafka.common.protocol.Errors) that the producer's requests can meet, by name, and
 * which of them a produce request may simply be sent again for.
 */
const NAMES: Record<number, string> = {
  [-1]: 'UNKNOWN_SERVER_ERROR',
  1: 'OFFSET_OUT_OF_RANGE',
  2: 'CORRUPT_MESSAGE',
  3: 'UNKNOWN_TOPIC_OR_PARTITION',
  5: 'LEADER_NOT_AVAILABLE',
  6: 'NOT_LEADER_OR_FOLLOWER',
  7: 'REQUEST_TIMED_OUT',
  8: 'BROKER_NOT_AVAILABLE',
  9: 'REPLICA_NOT_AVAILABLE',
  10: 'MESSAGE_TOO_LARGE',
  13: 'NETWORK_EXCEPTION',
  14: 'COORDINATOR_LOAD_IN_PROGRESS',
  15: 'COORDINATOR_NOT_AVAILABLE',
  16: 'NOT_COORDINATOR',
  17: 'INVALID_TOPIC_EXCEPTION',
  18: 'RECORD_LIST_TOO_LARGE',
  19: 'NOT_ENOUGH_REPLICAS',
  20: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  21: 'INVALID_REQUIRED_ACKS',
  29: 'TOPIC_AUTHORIZATION_FAILED',
  31: 'CLUSTER_AUTHORIZATION_FAILED',
  32: 'INVALID_TIMESTAMP',
  33: 'UNSUPPORTED_SASL_MECHANISM',
  34: 'ILLEGAL_SASL_STATE',
  35: 'UNSUPPORTED_VERSION',
  42: 'INVALID_REQUEST',
  43: 'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  45: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
  46: 'DUPLICATE_SEQUENCE_NUMBER',
  47: 'INVALID_PRODUCER_EPOCH',
  53: 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  56: 'KAFKA_STORAGE_ERROR',
  58: 'SASL_AUTHENTICATION_FAILED',
  59: 'UNKNOWN_PRODUCER_ID',
  74: 'FENCED_LEADER_EPOCH',
  75: 'UNKNOWN_LEADER_EPOCH',
  87: 'INVALID_RECORD',
  89: 'THROTTLING_QUOTA_EXCEEDED',
};

export function kafkaErrorName(code: number): string {
  return NAMES[code] ?? `KAFKA_ERROR_${code}`;
}

/** Leadership moved or is being elected: ask for metadata again, then send the same batch to the new leader. */
const LEADERSHIP = new Set([3, 5, 6, 74, 75]);
/** Transient on the broker: send the same batch again (same sequence, so the broker keeps it once). */
const TRANSIENT = new Set([7, 13, 19, 20, 56]);

/** Answers to InitProducerId that mean "not yet": the broker is still getting its producer ids ready. */
const NOT_READY = new Set([5, 7, 14, 15, 16]);

export function notReadyYet(code: number): boolean {
  return NOT_READY.has(code);
}

export function leadershipChanged(code: number): boolean {
  return LEADERSHIP.has(code);
}

export function retriableProduceError(code: number): boolean {
  return LEADERSHIP.has(code) || TRANSIENT.has(code);
}

/** The broker already holds this batch (a retry of one it had written). */
export const DUPLICATE_SEQUENCE_NUMBER = 46;
