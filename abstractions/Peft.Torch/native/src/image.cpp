// Image decoding for data pipelines: JPEG through libjpeg-turbo's TurboJPEG API, PNG through
// libspng, the format told by the magic bytes. The result is a uint8 tensor of shape
// [height, width, channels] with 1 (gray) or 3 (RGB) channels; alpha is dropped and 16-bit
// samples are reduced to 8 bits.
//
// Malformed input never crashes: every failure becomes the thread's last error with the reason
// given by the library (tjGetErrorStr2, spng_strerror). JPEG warnings (such as a premature end of
// data, which libjpeg would otherwise fill with gray) are errors too.
#include "common.h"

#include <spng.h>
#include <turbojpeg.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

enum ImageFormat : int32_t { kJpeg = 1, kPng = 2 };

// Images above this many pixels are refused before anything is allocated (a 2^14 x 2^14 image).
constexpr int64_t kMaxPixels = int64_t{1} << 28;
// Largest PNG chunk (and cache of ancillary chunks) libspng may buffer.
constexpr size_t kMaxPngChunk = size_t{64} << 20;

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

// Decoder handles are released by their owners even when a constructor throws half-way.
struct TjDestroy {
  void operator()(void* handle) const { tjDestroy(handle); }
};
struct SpngFree {
  void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};

struct ImageInfo {
  ImageFormat format;
  int32_t width;
  int32_t height;
  int32_t channels;  // what channels = 0 decodes to: 1 for gray sources, 3 for color ones
};

ImageFormat detect_format(const uint8_t* data, int64_t length) {
  static const uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (length <= 0) fail("image data is empty");
  if (length >= 8 && std::memcmp(data, kPngMagic, 8) == 0) return kPng;
  if (length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return kJpeg;
  std::string hex;
  for (int64_t k = 0; k < std::min<int64_t>(length, 8); ++k) {
    char byte[4];
    std::snprintf(byte, sizeof byte, k == 0 ? "%02x" : " %02x", data[k]);
    hex += byte;
  }
  fail("not a JPEG or PNG image (first bytes: " + hex + ")");
}

void check_dimensions(const char* format, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0)
    fail(std::string("invalid ") + format + ": the header gives a size of " + std::to_string(width) +
         "x" + std::to_string(height) + " pixels");
  if (width * height > kMaxPixels)
    fail(std::string(format) + " of " + std::to_string(width) + "x" + std::to_string(height) +
         " pixels exceeds the limit of 2^28 pixels");
}

int32_t output_channels(int32_t requested, int32_t native) {
  if (requested != 0 && requested != 1 && requested != 3)
    fail("channels must be 0 (as stored), 1 (gray) or 3 (RGB), not " + std::to_string(requested));
  return requested == 0 ? native : requested;
}

// ITU-R BT.601 luma with libjpeg's fixed-point weights (they sum to 2^16, so gray stays gray).
void rgb_to_gray(const uint8_t* rgb, uint8_t* gray, int64_t pixels) {
  for (int64_t k = 0; k < pixels; ++k, rgb += 3)
    gray[k] = static_cast<uint8_t>((19595 * rgb[0] + 38470 * rgb[1] + 7471 * rgb[2] + 32768) >> 16);
}

at::Tensor hwc_bytes(int32_t height, int32_t width, int32_t channels) {
  return at::empty({height, width, channels}, at::TensorOptions().dtype(at::kByte));
}

// Reduces an RGB tensor to the requested channel count (it is already RGB when 3).
at::Tensor finish_rgb(at::Tensor rgb, int32_t channels) {
  if (channels == 3) return rgb;
  at::Tensor gray = hwc_bytes(rgb.size(0), rgb.size(1), 1);
  rgb_to_gray(rgb.data_ptr<uint8_t>(), gray.data_ptr<uint8_t>(), rgb.size(0) * rgb.size(1));
  return gray;
}

// ---- JPEG --------------------------------------------------------------------------------------

class Jpeg {
 public:
  Jpeg(const uint8_t* data, int64_t length) : data_(data), length_(length), handle_(tjInitDecompress()) {
    if (handle_ == nullptr) fail(std::string("cannot start a JPEG decoder: ") + tjGetErrorStr2(nullptr));
    int subsampling = 0;
    if (tjDecompressHeader3(handle_.get(), data_, static_cast<unsigned long>(length_), &width_, &height_,
                            &subsampling, &colorspace_) != 0)
      fail("invalid JPEG: " + error());
    check_dimensions("JPEG", width_, height_);
  }
  ImageInfo info() const { return {kJpeg, width_, height_, colorspace_ == TJCS_GRAY ? 1 : 3}; }

  at::Tensor decode(int32_t requested) {
    const int32_t channels = output_channels(requested, info().channels);
    if (colorspace_ == TJCS_CMYK || colorspace_ == TJCS_YCCK) return finish_rgb(decode_cmyk(), channels);
    at::Tensor out = hwc_bytes(height_, width_, channels);
    decode_into(out.data_ptr<uint8_t>(), channels, channels == 1 ? TJPF_GRAY : TJPF_RGB);
    return out;
  }

 private:
  // libjpeg converts CMYK to nothing but CMYK. Such files (Adobe's) store inverted inks, so
  // R = C*K/255 as OpenCV and Pillow compute it.
  at::Tensor decode_cmyk() {
    std::vector<uint8_t> cmyk(static_cast<size_t>(width_) * height_ * 4);
    decode_into(cmyk.data(), 4, TJPF_CMYK);
    at::Tensor rgb = hwc_bytes(height_, width_, 3);
    uint8_t* out = rgb.data_ptr<uint8_t>();
    for (size_t p = 0; p < cmyk.size(); p += 4, out += 3)
      for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>((cmyk[p + c] * cmyk[p + 3] + 127) / 255);
    return rgb;
  }

  void decode_into(uint8_t* out, int32_t channels, int pixel_format) {
    if (tjDecompress2(handle_.get(), data_, static_cast<unsigned long>(length_), out, width_, width_ * channels,
                      height_, pixel_format, TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING) != 0)
      fail("invalid JPEG: " + error());
  }

  std::string error() const { return tjGetErrorStr2(handle_.get()); }

  const uint8_t* data_;
  int64_t length_;
  std::unique_ptr<void, TjDestroy> handle_;
  int width_ = 0, height_ = 0, colorspace_ = 0;
};

// ---- PNG ---------------------------------------------------------------------------------------

class Png {
 public:
  Png(const uint8_t* data, int64_t length) : ctx_(spng_ctx_new(0)) {
    if (ctx_ == nullptr) fail("cannot start a PNG decoder: out of memory");
    check(spng_set_chunk_limits(ctx_.get(), kMaxPngChunk, kMaxPngChunk));
    check(spng_set_png_buffer(ctx_.get(), data, static_cast<size_t>(length)));
    check(spng_get_ihdr(ctx_.get(), &ihdr_));
    check_dimensions("PNG", ihdr_.width, ihdr_.height);
  }
  ImageInfo info() const {
    const bool gray = ihdr_.color_type == SPNG_COLOR_TYPE_GRAYSCALE ||
                      ihdr_.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    return {kPng, static_cast<int32_t>(ihdr_.width), static_cast<int32_t>(ihdr_.height), gray ? 1 : 3};
  }

  at::Tensor decode(int32_t requested) {
    const int32_t channels = output_channels(requested, info().channels);
    // libspng emits G8 only from gray sources of up to 8 bits; everything else goes through RGB8,
    // which expands palettes, drops alpha and keeps the high byte of 16-bit samples.
    const bool direct_gray =
        channels == 1 && ihdr_.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ihdr_.bit_depth <= 8;
    const int fmt = direct_gray ? SPNG_FMT_G8 : SPNG_FMT_RGB8;
    at::Tensor out = hwc_bytes(info().height, info().width, direct_gray ? 1 : 3);
    size_t size = 0;
    check(spng_decoded_image_size(ctx_.get(), fmt, &size));
    TORCH_CHECK(size == out.nbytes(), "libspng wants ", size, " bytes for a ", out.sizes(), " image");
    check(spng_decode_image(ctx_.get(), out.data_ptr<uint8_t>(), size, fmt, 0));
    return direct_gray ? out : finish_rgb(out, channels);
  }

 private:
  static void check(int rc) {
    if (rc != 0) fail(std::string("invalid PNG: ") + spng_strerror(rc));
  }

  std::unique_ptr<spng_ctx, SpngFree> ctx_;
  spng_ihdr ihdr_{};
};

}  // namespace

// Reads the format (1 = JPEG, 2 = PNG), the size and the channels that channels = 0 would decode
// to, without decoding the pixels.
PEFT_API int peft_image_info(const uint8_t* data, int64_t length, int32_t* width, int32_t* height,
                             int32_t* channels, int32_t* format) {
  PEFT_TRY
  const ImageInfo info = detect_format(data, length) == kJpeg ? Jpeg(data, length).info() : Png(data, length).info();
  *width = info.width;
  *height = info.height;
  *channels = info.channels;
  *format = info.format;
  return 0;
  PEFT_CATCH(1)
}

// Decodes a JPEG or PNG into a new uint8 tensor [height, width, channels]. channels: 0 keeps the
// source's (1 for gray, 3 for color), 1 converts to gray, 3 to RGB.
PEFT_API void* peft_image_decode(const uint8_t* data, int64_t length, int32_t channels) {
  PEFT_TRY
  at::Tensor image = detect_format(data, length) == kJpeg ? Jpeg(data, length).decode(channels)
                                                          : Png(data, length).decode(channels);
  return peft::new_handle(std::move(image));
  PEFT_CATCH(nullptr)
}
