#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
// jpeglib.h needs stdio.h first; jerror.h names the warning codes.
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

void odam_image_free(void *pointer) { free(pointer); }

static void set_error(char error[256], const char *message) {
    snprintf(error, 256, "%s", message);
}

/* ---------- JPEG ---------- */

struct jpeg_failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    int truncated;
    char message[JMSG_LENGTH_MAX];
};

static void jpeg_fail(j_common_ptr info) {
    struct jpeg_failure *failure = (struct jpeg_failure *)info->err;
    (*info->err->format_message)(info, failure->message);
    longjmp(failure->jump, 1);
}

static void jpeg_note(j_common_ptr info, int level) {
    struct jpeg_failure *failure = (struct jpeg_failure *)info->err;
    // A premature end of data is a warning to libjpeg (it pads with gray); for odam it is a truncated file.
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) failure->truncated = 1;
}

/// a * b / 255 rounded, exactly as PIL computes it (its MULDIV255).
static int muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/// Reads the orientation tag (0x0112) of an EXIF APP1 segment; 1 when absent or malformed.
static int exif_orientation(const unsigned char *data, unsigned int length) {
    if (length < 14 || memcmp(data, "Exif\0\0", 6) != 0) return 1;
    const unsigned char *tiff = data + 6;
    unsigned int size = length - 6;
    int little = tiff[0] == 'I';
#define U16(p) (little ? (unsigned)((p)[0] | (p)[1] << 8) : (unsigned)((p)[0] << 8 | (p)[1]))
#define U32(p) (little ? (unsigned)((p)[0] | (p)[1] << 8 | (p)[2] << 16 | (unsigned)(p)[3] << 24) \
                       : (unsigned)((unsigned)(p)[0] << 24 | (p)[1] << 16 | (p)[2] << 8 | (p)[3]))
    unsigned int ifd = U32(tiff + 4);
    // Compared by subtraction: the offset comes from the file and `ifd + 2` wraps for 0xFFFFFFFE.
    if (ifd > size || size - ifd < 2) return 1;
    unsigned int entries = U16(tiff + ifd);
    for (unsigned int i = 0; i < entries; i++) {
        unsigned int entry = ifd + 2 + 12 * i;
        if (entry + 12 > size) return 1;
        if (U16(tiff + entry) == 0x0112) {
            unsigned int value = U16(tiff + entry + 8);
            return value >= 1 && value <= 8 ? (int)value : 1;
        }
    }
#undef U16
#undef U32
    return 1;
}

int odam_decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, odam_image *out) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    struct jpeg_decompress_struct info;
    struct jpeg_failure failure;
    memset(&failure, 0, sizeof(failure));
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail;
    failure.manager.emit_message = jpeg_note;
    unsigned char *volatile pixels = NULL;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&info);
        free(pixels);
        set_error(out->error, failure.message[0] ? failure.message : "corrupt JPEG data");
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&info, TRUE);
    for (jpeg_saved_marker_ptr marker = info.marker_list; marker; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1) out->orientation = exif_orientation(marker->data, marker->data_length);
    }
    out->stored_bit_depth = 8;
    out->stored_channels = info.num_components;
    if ((long long)info.image_width * (long long)info.image_height > max_pixels) {
        snprintf(out->error, 256, "%ux%u pixels exceed the limit of %lld (decompression bomb guard)", info.image_width,
                 info.image_height, max_pixels);
        jpeg_destroy_decompress(&info);
        return 2;
    }
    // CMYK and YCCK (print and stock photography) are decoded to CMYK by libjpeg and converted below, as PIL does.
    int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    // Adobe's encoders (and PIL's) store CMYK inverted and say so with an APP14 marker.
    int inverted = cmyk && info.saw_Adobe_marker;
    info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&info);
    size_t stride = (size_t)info.output_width * 3;
    pixels = malloc(stride * info.output_height + (cmyk ? (size_t)info.output_width : 0));
    if (!pixels) {
        set_error(out->error, "out of memory");
        jpeg_destroy_decompress(&info);
        return 1;
    }
    while (info.output_scanline < info.output_height) {
        unsigned char *target = pixels + stride * info.output_scanline;
        if (!cmyk) {
            JSAMPROW row = target;
            jpeg_read_scanlines(&info, &row, 1);
        } else {
            // A CMYK row (4 bytes a pixel) is one pixel-width longer than its RGB row: read it in place, with the
            // extra width allocated above, and convert front to back (each RGB pixel ends before its CMYK source).
            JSAMPROW row = target;
            jpeg_read_scanlines(&info, &row, 1);
            for (size_t x = 0; x < info.output_width; x++) {
                int c = target[4 * x], m = target[4 * x + 1], y = target[4 * x + 2], k = target[4 * x + 3];
                if (inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
                // PIL's cmyk2rgb, rounding included: channel = (255 - k) - ink * (255 - k) / 255.
                int white = 255 - k;
                target[3 * x] = (unsigned char)(white - muldiv255(c, white));
                target[3 * x + 1] = (unsigned char)(white - muldiv255(m, white));
                target[3 * x + 2] = (unsigned char)(white - muldiv255(y, white));
            }
        }
        if (failure.truncated) break;
    }
    if (failure.truncated) {
        jpeg_destroy_decompress(&info);
        free(pixels);
        set_error(out->error, "truncated JPEG (the data ends before the image does)");
        return 1;
    }
    jpeg_finish_decompress(&info);
    out->width = (int)info.output_width;
    out->height = (int)info.output_height;
    out->pixels = pixels;
    jpeg_destroy_decompress(&info);
    return 0;
}

/* ---------- PNG ---------- */

struct png_source {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char message[256];
};

static void png_read_memory(png_structp png, png_bytep target, png_size_t length) {
    struct png_source *source = (struct png_source *)png_get_io_ptr(png);
    if (source->offset + length > source->size) png_error(png, "truncated PNG (the data ends before the image does)");
    memcpy(target, source->data + source->offset, length);
    source->offset += length;
}

static void png_fail(png_structp png, png_const_charp message) {
    struct png_source *source = (struct png_source *)png_get_error_ptr(png);
    snprintf(source->message, sizeof(source->message), "%s", message);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp message) { (void)png; (void)message; }

int odam_decode_png(const unsigned char *data, size_t size, long long max_pixels, odam_image *out) {
    memset(out, 0, sizeof(*out));
    out->orientation = 1;
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        set_error(out->error, "not a PNG (bad signature)");
        return 1;
    }
    struct png_source source = {data, size, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_fail, png_warn);
    if (!png) {
        set_error(out->error, "out of memory");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(pixels);
        free(rows);
        set_error(out->error, source.message[0] ? source.message : "corrupt PNG data");
        return 1;
    }
    // The bomb guard below checks sizes itself; lift libpng's own 1M-pixel-per-side default.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(png, &source, png_read_memory);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
    out->stored_bit_depth = depth;
    out->stored_channels = png_get_channels(png, info);
    if ((long long)width * (long long)height > max_pixels) {
        snprintf(out->error, 256, "%ux%u pixels exceed the limit of %lld (decompression bomb guard)", width, height, max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return 2;
    }
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    // Expanding a palette (or gray) with a tRNS chunk adds an alpha channel; drop it with the others.
    if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)width * 3) png_error(png, "unexpected row layout after conversion to RGB");
    pixels = malloc(stride * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + stride * y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = (int)width;
    out->height = (int)height;
    out->pixels = pixels;
    return 0;
}

struct png_sink {
    unsigned char *data;
    size_t size;
    size_t capacity;
    char message[256];
};

static void png_write_memory(png_structp png, png_bytep source, png_size_t length) {
    struct png_sink *sink = (struct png_sink *)png_get_io_ptr(png);
    if (sink->size + length > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity : 65536;
        while (capacity < sink->size + length) capacity *= 2;
        unsigned char *grown = realloc(sink->data, capacity);
        if (!grown) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, source, length);
    sink->size += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

static void png_write_fail(png_structp png, png_const_charp message) {
    struct png_sink *sink = (struct png_sink *)png_get_error_ptr(png);
    snprintf(sink->message, sizeof(sink->message), "%s", message);
    png_longjmp(png, 1);
}

int odam_encode_png(const unsigned char *pixels, int width, int height, int channels, unsigned char **out, size_t *out_size,
                    char error[256]) {
    struct png_sink sink = {NULL, 0, 0, {0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_write_fail, png_warn);
    if (!png) {
        set_error(error, "out of memory");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(sink.data);
        set_error(error, sink.message[0] ? sink.message : "PNG encoding failed");
        return 1;
    }
    png_set_write_fn(png, &sink, png_write_memory, png_flush_memory);
    // Heat maps are written by the thousand: fast compression, one cheap filter.
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_SUB);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + stride * (size_t)y));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = sink.data;
    *out_size = sink.size;
    return 0;
}
