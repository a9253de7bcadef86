export { cdfErrorText } from './errors.js';
export {
  ANONYMOUS,
  type Caller,
  credentialOf,
  hashCredential,
  IdentityResolver,
} from './identity.js';
export { partitionProblem, queryPartitionProblem } from './partition.js';
export { type CdfTarget, normalizeTarget, parseCdfTarget, unsafeTargetReason } from './path.js';
export { compilePattern, type PathPattern, PatternIndex } from './pattern.js';
export { FAMILIES, lookupRoute, type OperationClass, type RouteInfo } from './routes.js';
export { type VersionChoice, VersionPolicy } from './version.js';
