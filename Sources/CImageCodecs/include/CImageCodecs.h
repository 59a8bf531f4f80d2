#ifndef ODAM_CIMAGECODECS_H
#define ODAM_CIMAGECODECS_H

#include <stddef.h>

/// A decoded image: 8-bit RGB, row-major, 3 bytes a pixel; `pixels` is malloc'ed (free with odam_image_free).
typedef struct {
    unsigned char *pixels;
    int width;
    int height;
    /// The EXIF orientation (1-8) of a JPEG, 1 when absent.
    int orientation;
    /// The bit depth and color type as stored, for reporting.
    int stored_bit_depth;
    int stored_channels;
    /// Why decoding failed, when it did.
    char error[256];
} odam_image;

/// Decodes a baseline or progressive JPEG (gray, YCbCr, CMYK or YCCK) to RGB; CMYK is converted as PIL converts it. Returns 0 on success.
/// Images of more than `max_pixels` pixels are refused before their pixels are decoded.
/// libjpeg's longjmp stays inside this C function.
int odam_decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, odam_image *out);

/// Decodes a PNG of any color type and bit depth to 8-bit RGB: palette expanded, gray replicated, alpha and tRNS
/// dropped, 16-bit samples reduced to their high byte. Returns 0 on success.
int odam_decode_png(const unsigned char *data, size_t size, long long max_pixels, odam_image *out);

/// Encodes 8-bit gray (channels 1) or RGB (channels 3) pixels as PNG. On success *out is malloc'ed.
int odam_encode_png(const unsigned char *pixels, int width, int height, int channels, unsigned char **out, size_t *out_size,
                    char error[256]);

void odam_image_free(void *pointer);

#endif
