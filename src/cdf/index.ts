export { cdfErrorBody, cdfErrorMessage } from './errors.js';
export { hashCredential, identityOf } from './identity.js';
export { partitionInQuery, partitionProblem } from './partition.js';
export { type CdfTarget, parseCdfTarget, unsafeTargetReason } from './path.js';
export { compilePattern, headSegment, type PathPattern, PatternIndex } from './pattern.js';
export { FAMILIES, lookupRoute, type OperationClass, type RouteInfo } from './routes.js';
export { type VersionChoice, VersionPolicy } from './version.js';
