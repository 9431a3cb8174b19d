// Moved to overlay/xattrs.ts (the tar writer underneath commit and export needs it, and overlay
// never imports container code). Kept for the importers written before the move.
export { applyXattrs, carriedXattrs, carriesXattr } from '../overlay/xattrs.js';
