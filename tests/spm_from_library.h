// spm.h's model built from the real sentencepiece library's view of a .model file, so tests and
// the tokenizer benchmark compare the two on exactly the same vocabulary. (The library's API has no
// IsUserDefined; the fixture models have no user-defined pieces, so the rest count as normal.)
#pragma once

#include <sentencepiece_processor.h>

#include <string>
#include <vector>

#include "tokenizer/spm.h"

namespace strata::test {

inline spm::Model spm_model_from_library(const sentencepiece::SentencePieceProcessor& sp) {
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::vector<spm::PieceType> types;
    for (int id = 0; id < sp.GetPieceSize(); ++id) {
        pieces.push_back(sp.IdToPiece(id));
        scores.push_back(sp.GetScore(id));
        types.push_back(sp.IsControl(id)   ? spm::PieceType::control
                        : sp.IsUnknown(id) ? spm::PieceType::unknown
                        : sp.IsByte(id)    ? spm::PieceType::byte
                        : sp.IsUnused(id)  ? spm::PieceType::unused
                                           : spm::PieceType::normal);
    }
    return spm::Model(std::move(pieces), std::move(scores), std::move(types));
}

}  // namespace strata::test
