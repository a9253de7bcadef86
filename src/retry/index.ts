export { backoffMs, retryAfterMs } from './backoff.js';
export { RetryBudget } from './budget.js';
export { CircuitBreaker, type CircuitState } from './circuit.js';
export { type Failure, isAutoRetryable, type RetrySubject, retryReason } from './policy.js';
