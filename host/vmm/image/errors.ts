/** An image pinbox cannot load, with what is wrong in words that name the part. */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  /** The image's file name, when known. */
  readonly source: string | undefined;

  constructor(message: string, source?: string) {
    super(source === undefined ? message : `${source}: ${message}`);
    this.source = source;
  }
}
