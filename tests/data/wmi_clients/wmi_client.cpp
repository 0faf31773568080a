// Single-purpose WMI client as a BOF writes it (cf. trustedsec/CS-Remote-OPs-BOF src/common/wmi.c):
// connect through IWbemLocator, then one IWbemServices call. build.sh compiles it twice:
//   -DGUIDS_AS_TEXT  the locator's CLSID/IID built from text (CLSIDFromString/IIDFromString), then
//                    ExecMethod Win32_Process.Create;
//   otherwise        the GUIDs as immediates in code (no text, no linked IID constants), then ExecQuery.
// tests/test_yara_rules.py scans the objects.
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <wbemidl.h>

extern "C" HRESULT wmi_client(const wchar_t *resource, const wchar_t *query, IWbemClassObject *params,
                              IWbemClassObject **out, IEnumWbemClassObject **rows)
{
    IWbemLocator *locator = NULL;
    IWbemServices *services = NULL;
#ifdef GUIDS_AS_TEXT
    CLSID clsid;
    IID iid;
    CLSIDFromString(L"{4590F811-1D3A-11D0-891F-00AA004B2E24}", &clsid);
    IIDFromString(L"{DC12A687-737F-11CF-884D-00AA004B2E24}", &iid);
    HRESULT hr = CoCreateInstance(clsid, NULL, CLSCTX_INPROC_SERVER, iid, (void **)&locator);
#else
    volatile GUID clsid = {0x4590F811, 0x1D3A, 0x11D0, {0x89, 0x1F, 0x00, 0xAA, 0x00, 0x4B, 0x2E, 0x24}};
    volatile GUID iid = {0xDC12A687, 0x737F, 0x11CF, {0x88, 0x4D, 0x00, 0xAA, 0x00, 0x4B, 0x2E, 0x24}};
    HRESULT hr = CoCreateInstance((const CLSID &)clsid, NULL, CLSCTX_INPROC_SERVER, (const IID &)iid,
                                  (void **)&locator);
#endif
    if (FAILED(hr))
        return hr;
    BSTR path = SysAllocString(resource);
    hr = locator->ConnectServer(path, NULL, NULL, NULL, 0, NULL, NULL, &services);
    SysFreeString(path);
    locator->Release();
    if (FAILED(hr))
        return hr;
#ifdef GUIDS_AS_TEXT
    BSTR first = SysAllocString(L"Win32_Process");
    BSTR second = SysAllocString(L"Create");
    hr = services->ExecMethod(first, second, 0, NULL, params, out, NULL);
#else
    BSTR first = SysAllocString(L"WQL");
    BSTR second = SysAllocString(query);
    hr = services->ExecQuery(first, second, WBEM_FLAG_FORWARD_ONLY | WBEM_FLAG_RETURN_IMMEDIATELY, NULL, rows);
#endif
    SysFreeString(second);
    SysFreeString(first);
    services->Release();
    return hr;
}
